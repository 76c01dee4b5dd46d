"""The SDKs notebook users call work through the proxy, configured only with what we give.

Each SDK runs in a real kernel against a loopback upstream that speaks enough of its
provider's wire format (``tests/upstream.py``), twice: with explicit keyword arguments
(``js.connection(name).sdk_kwargs()``) and in environment mode (connections that export
their variables; the SDK built with no arguments, or with the one base URL variable it does
not read by itself). Every request that reached the upstream carries the stored key in the
provider's own header and nowhere else, and the kernel's token nowhere at all; the stored key
never shows up in any kernel message.

Not installed, so not tested: ``groq``, ``together`` and ``boto3`` (their presets are
called with the OpenAI SDK here, ``sdk_kwargs("openai")``) and ``litellm`` (its install pins
``huggingface_hub`` below 2 and brings boto3, tokenizers and aiohttp).
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from typing import Any

import pytest

from jupyter_secrets.services.connections import validate_env
from jupyter_secrets.services.presets import PRESETS
from jupyter_secrets.services.tokens import token_from_headers

from .helpers import assert_no_canary
from .upstream import CONTENT, RecordedRequest

# Where each provider wants its key (by the path the SDK called), else Authorization: Bearer.
KEY_HEADER = {"/openai/deployments/": "api-key", "/v1/models/": "x-goog-api-key",
              "/v1/messages": "x-api-key"}


@pytest.fixture
def providers(runtime, upstream, canary):
    """A connection of every LLM preset, all to the loopback upstream, the canary as key."""

    def create(export_env: bool) -> None:
        for name in PRESETS:
            if name == "http":
                continue
            base = f"{upstream.url}/v1" if name in ("openai", "openrouter") else upstream.url
            runtime.connections.create("admin", {"name": name, "preset": name, "base_url": base,
                                                 "value": canary, "export_env": export_env})

    return create


def check_upstream_saw_only_the_key(
    requests: list[RecordedRequest], canary: str, token: str
) -> None:
    """Each request: the key in the provider's header and nowhere else; the token nowhere."""
    assert requests
    for request in requests:
        header = next((h for p, h in KEY_HEADER.items() if request.path.startswith(p)),
                      "Authorization")
        expected = canary if header != "Authorization" else f"Bearer {canary}"
        assert request.headers.get(header) == expected, (request.path, header)
        carriers = [k for k, v in request.headers.get_all() if canary in v]
        assert carriers == [header] or [c.lower() for c in carriers] == [header.lower()], \
            (request.path, carriers)
        assert canary not in request.query and canary.encode() not in request.body
        everything = (json.dumps(list(request.headers.get_all())) + request.query
                      + request.body.decode("utf-8", "replace"))
        assert token not in everything, f"the kernel token went upstream on {request.path}"


def results(out: str) -> dict[str, Any]:
    return json.loads(out.strip().splitlines()[-1])


def test_every_preset_knows_its_provider():
    """Small table, complete rows: env and SDK templates use our two fields only."""
    assert set(PRESETS) == {"openai", "anthropic", "gemini", "mistral", "cohere", "huggingface",
                            "azure-openai", "openrouter", "groq", "together", "bedrock",
                            "github", "http"}
    for name, preset in PRESETS.items():
        if name == "http":
            assert not preset.env
            continue
        assert validate_env(preset.env) == preset.env, name
        assert "{token}" in preset.env.values() and "{base_url}" in preset.env.values(), name
        assert preset.sdks, name

        def strings(value: Any) -> list[str]:
            if isinstance(value, dict):
                return [s for v in value.values() for s in strings(v)]
            return [value]

        for kwargs in preset.sdks.values():
            filled = [s.replace("{base_url}", "").replace("{token}", "")
                      for s in strings(kwargs)]
            assert not any("{" in s or "}" in s for s in filled), name
    assert PRESETS["gemini"].auth == {"scheme": "header", "header": "x-goog-api-key"}
    assert PRESETS["azure-openai"].auth == {"scheme": "header", "header": "api-key"}
    assert PRESETS["azure-openai"].base_url is None


async def test_presets_fill_in_connections_and_azure_asks_for_its_endpoint(api, canary):
    status, reply = await api("POST", "connections", body={
        "name": "azure", "preset": "azure-openai", "value": canary})
    assert status == 422
    assert "azure-openai preset needs a base_url" in reply["message"]
    assert "openai.azure.com" in reply["message"]
    assert (await api("GET", "connections"))[1]["connections"] == []
    status, reply = await api("POST", "connections", body={
        "name": "azure", "preset": "azure-openai", "value": canary, "export_env": True,
        "base_url": "https://example-resource.openai.azure.com"})
    assert status == 201, reply
    assert reply["auth"] == {"scheme": "header", "header": "api-key"}
    assert reply["env"]["AZURE_OPENAI_API_KEY"] == "{token}"
    status, reply = await api("POST", "connections", body={
        "name": "gh", "preset": "github", "value": canary})
    assert status == 201 and reply["base_url"] == "https://api.github.com"
    assert reply["headers"] == {"X-GitHub-Api-Version": "2022-11-28"}
    _, listed = await api("GET", "presets")
    gemini = next(p for p in listed["presets"] if p["name"] == "gemini")
    assert gemini["sdks"]["google-genai"] == {
        "api_key": "{token}", "http_options": {"base_url": "{base_url}"}}
    assert gemini["env"] == {"GOOGLE_GEMINI_BASE_URL": "{base_url}", "GEMINI_API_KEY": "{token}"}


def test_tokens_are_recognised_where_sdks_put_keys():
    token = "jsk_" + "a" * 43
    for headers in ({"Authorization": f"Bearer {token}"}, {"Authorization": f"token {token}"},
                    {"x-api-key": token}, {"x-goog-api-key": token}, {"api-key": token}):
        assert token_from_headers(headers) == token, headers
    assert token_from_headers({"x-goog-api-key": "AIza-not-ours"}) is None
    assert token_from_headers({"X-Other": token}) is None


async def proxy_calls(api: Any, expected: int) -> list[dict[str, Any]]:
    """The audit's proxy_call events, once ``expected`` are written (a writer thread commits)."""
    for _ in range(50):
        status, body = await api("GET", "audit", params={"action": "proxy_call"})
        assert status == 200, body
        if len(body["events"]) >= expected:
            break
        await asyncio.sleep(0.1)
    return list(body["events"])


async def test_sdks_with_explicit_arguments(
    server_log, providers, start_kernel, upstream, canary, api
):
    providers(export_env=False)
    kernel = await start_kernel()
    out = await kernel.check(textwrap.dedent("""
        import json, os
        import jupyter_secrets as js
        hi = [{"role": "user", "content": "hi"}]
        got = {"token": os.environ["JUPYTER_SECRETS_TOKEN"]}

        from google import genai
        g = genai.Client(**js.connection("gemini").sdk_kwargs())
        got["gemini"] = g.models.generate_content(model="m", contents="hi").text
        got["gemini stream"] = [c.text for c in g.models.generate_content_stream(
            model="m", contents="hi")]

        from mistralai.client import Mistral
        m = Mistral(**js.connection("mistral").sdk_kwargs())
        got["mistral"] = m.chat.complete(model="m", messages=hi).choices[0].message.content
        got["mistral stream"] = [e.data.choices[0].delta.content or ""
                                 for e in m.chat.stream(model="m", messages=hi)]

        import cohere
        co = cohere.ClientV2(**js.connection("cohere").sdk_kwargs())
        got["cohere"] = co.chat(model="m", messages=hi).message.content[0].text
        got["cohere stream"] = [e.delta.message.content.text for e in co.chat_stream(
            model="m", messages=hi) if e.type == "content-delta"]

        from huggingface_hub import InferenceClient
        hf = InferenceClient(**js.connection("huggingface").sdk_kwargs())
        got["huggingface"] = hf.chat_completion(model="x/y", messages=hi).choices[0].message.content
        got["huggingface stream"] = [c.choices[0].delta.content or "" for c in hf.chat_completion(
            model="x/y", messages=hi, stream=True) if c.choices]

        from openai import AzureOpenAI, OpenAI
        az = AzureOpenAI(**js.connection("azure-openai").sdk_kwargs())
        got["azure-openai"] = az.chat.completions.create(
            model="deployment", messages=hi).choices[0].message.content
        got["azure-openai stream"] = [c.choices[0].delta.content or "" for c in
            az.chat.completions.create(model="deployment", messages=hi, stream=True) if c.choices]

        # OpenAI-compatible APIs through the OpenAI SDK (their own SDKs are not installed).
        for name in ("openrouter", "groq", "together", "bedrock"):
            kw = (js.connection(name).sdk_kwargs() if name == "openrouter"
                  else js.connection(name).sdk_kwargs("openai"))
            got[name] = OpenAI(**kw).chat.completions.create(
                model="m", messages=hi).choices[0].message.content
        got["github"] = js.connection("github").get("/user").json()["login"]
        got["kwargs"] = {n: sorted(js.connection(n).sdk_kwargs()) for n in
                         ("gemini", "mistral", "azure-openai", "bedrock", "anthropic")}
        try:
            js.connection("gemini").sdk_kwargs("openai")
        except ValueError as error:
            got["wrong sdk"] = str(error)
        print(json.dumps(got))
    """))
    got = results(out)
    for name in ("gemini", "mistral", "cohere", "huggingface", "azure-openai", "openrouter",
                 "groq", "together", "bedrock"):
        assert got[name] == CONTENT, name
    for name in ("gemini", "mistral", "cohere", "huggingface", "azure-openai"):
        assert "".join(got[f"{name} stream"]) == CONTENT, name
        assert len([p for p in got[f"{name} stream"] if p]) == 3, name  # streamed, in pieces
    assert got["github"] == "octocat"
    assert got["kwargs"] == {
        "gemini": ["api_key", "http_options"], "mistral": ["api_key", "server_url"],
        "azure-openai": ["api_key", "api_version", "azure_endpoint"],
        "bedrock": ["endpoint_url"], "anthropic": ["api_key", "base_url"]}
    assert "google-genai" in got["wrong sdk"] and "'openai'" in got["wrong sdk"]
    paths = {r.path for r in upstream.requests}
    assert {"/v1/models/m:generateContent", "/v1/models/m:streamGenerateContent", "/v2/chat",
            "/openai/deployments/deployment/chat/completions", "/openai/v1/chat/completions",
            "/v1/chat/completions", "/user"} <= paths
    check_upstream_saw_only_the_key(upstream.requests, canary, got["token"])
    for run in kernel.runs:
        assert_no_canary(canary, run.raw, where="kernel messages")
    # SDKs hang up as soon as they have read the last event: every call is still audited,
    # and the proxy takes the hang-up calmly (no error after the answer was sent).
    events = await proxy_calls(api, len(upstream.requests))
    assert len(events) == len(upstream.requests)
    assert {e["status"] for e in events} == {200}
    assert "Cannot send error response" not in server_log()


async def test_sdks_in_environment_mode(providers, start_kernel, upstream, canary):
    providers(export_env=True)
    kernel = await start_kernel()
    out = await kernel.check(textwrap.dedent("""
        import json, os
        hi = [{"role": "user", "content": "hi"}]
        token = os.environ["JUPYTER_SECRETS_TOKEN"]
        got = {"token": token, "env": {k: v == token or "/proxy/" in v or v for k, v in
               os.environ.items() if k.split("_")[0] in ("OPENAI", "ANTHROPIC", "GOOGLE",
               "GEMINI", "CO", "HF", "AZURE", "MISTRAL", "OPENROUTER", "GROQ", "TOGETHER",
               "AWS", "GITHUB")}}

        from google import genai
        g = genai.Client()
        got["gemini"] = "".join(c.text for c in g.models.generate_content_stream(
            model="m", contents="hi"))

        from mistralai.client import Mistral  # reads the key, not the URL
        m = Mistral(server_url=os.environ["MISTRAL_BASE_URL"])
        got["mistral"] = "".join(e.data.choices[0].delta.content or ""
                                 for e in m.chat.stream(model="m", messages=hi))

        import cohere
        got["cohere"] = cohere.ClientV2().chat(model="m", messages=hi).message.content[0].text

        from huggingface_hub import InferenceClient  # reads HF_TOKEN, not the router URL
        from huggingface_hub.utils import build_hf_headers
        hf = InferenceClient(base_url=os.environ["HF_ROUTER_URL"])
        got["huggingface"] = hf.chat_completion(model="x/y", messages=hi).choices[0].message.content
        got["hub headers"] = sorted(build_hf_headers())  # Hub downloads: no kernel token

        from openai import AzureOpenAI, OpenAI
        got["azure-openai"] = AzureOpenAI().chat.completions.create(
            model="deployment", messages=hi).choices[0].message.content
        got["openai"] = OpenAI().chat.completions.create(
            model="m", messages=hi).choices[0].message.content

        from anthropic import Anthropic
        got["anthropic"] = Anthropic().messages.create(
            model="m", max_tokens=10, messages=hi).content[0].text

        from langchain_openai import ChatOpenAI
        chat = ChatOpenAI(model="m")
        got["langchain"] = chat.invoke("hi").content
        got["langchain stream"] = [c.content for c in chat.stream("hi") if c.content]

        got["openrouter"] = OpenAI(
            base_url=os.environ["OPENROUTER_BASE_URL"], api_key=os.environ["OPENROUTER_API_KEY"]
        ).chat.completions.create(model="m", messages=hi).choices[0].message.content
        print(json.dumps(got))
    """))
    got = results(out)
    for name in ("gemini", "mistral", "cohere", "huggingface", "azure-openai", "openai",
                 "anthropic", "langchain", "openrouter"):
        assert got[name] == CONTENT, name
    assert got["langchain stream"] == ["Hello", " from", " upstream"]
    assert got["hub headers"] == ["user-agent"]
    expected = {name for preset in PRESETS.values() for name in preset.env}
    assert expected <= set(got["env"])
    got["env"] = {name: got["env"][name] for name in expected}
    assert got["env"].pop("HF_HUB_DISABLE_IMPLICIT_TOKEN") == "1"
    assert got["env"].pop("OPENAI_API_VERSION") == "2024-10-21"
    assert all(v is True for v in got["env"].values()), got["env"]  # a proxy URL or the token
    check_upstream_saw_only_the_key(upstream.requests, canary, got["token"])
    for run in kernel.runs:
        assert_no_canary(canary, run.raw, where="kernel messages")
