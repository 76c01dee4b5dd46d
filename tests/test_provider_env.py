"""Connections that export their environment: existing code works unchanged, with no key.

A kernel started after ``export_env`` is set gets ``OPENAI_BASE_URL`` (the proxy URL of the
connection) and ``OPENAI_API_KEY`` (the kernel's own token), so ``OpenAI()`` with no
arguments calls through the proxy; the stored key never reaches the kernel.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from .helpers import USER


async def test_openai_with_no_arguments_works_through_the_proxy(
    runtime, upstream, canary, start_kernel, server_url
):
    runtime.connections.create("admin", {"name": "openai", "preset": "openai",
                                         "base_url": f"{upstream.url}/v1", "value": canary,
                                         "export_env": True})
    kernel = await start_kernel()
    out = await kernel.check(textwrap.dedent("""
        import json, os
        from openai import OpenAI
        import jupyter_secrets as js
        reply = OpenAI().chat.completions.create(model="m", messages=[])
        print(json.dumps({
            "base": os.environ["OPENAI_BASE_URL"],
            "key_is_token": os.environ["OPENAI_API_KEY"] == os.environ["JUPYTER_SECRETS_TOKEN"],
            "content": reply.choices[0].message.content,
            "env": js.env(),
        }))
    """))
    result = json.loads(out.strip().splitlines()[-1])
    assert result["base"].endswith("/api/secrets/v1/proxy/openai")  # connection_url + path
    assert result["key_is_token"] and result["content"] == "Hello from upstream"
    assert result["env"] == {"OPENAI_API_KEY": "openai", "OPENAI_BASE_URL": "openai"}
    assert upstream.requests[-1].headers["Authorization"] == f"Bearer {canary}"
    assert canary not in out


@pytest.mark.usefixtures("multi_user")
async def test_only_connections_shared_with_the_user_are_exported(
    runtime, upstream, canary, start_kernel, secrets_config
):
    runtime.connections.create("alice", {"name": "openai", "preset": "openai",
                                         "base_url": upstream.url, "value": canary,
                                         "export_env": True, "shared_with": ["user:alice"]})
    runtime.connections.create("alice", {"name": "claude", "preset": "anthropic",
                                         "base_url": upstream.url, "value": canary,
                                         "export_env": True})
    kernel = await start_kernel(USER)
    out = await kernel.check("import os; print(sorted(k for k in os.environ "
                             "if k.startswith(('OPENAI', 'ANTHROPIC'))))")
    assert out.strip() == "['ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL']"


@pytest.mark.parametrize(("body", "words"), [
    ({"env": {"PATH": "{base_url}"}}, "cannot be set"),
    ({"env": {"JUPYTER_SECRETS_TOKEN": "{token}"}}, "cannot be set"),
    ({"env": {"X": "{{secrets.KEY}}"}}, "only {base_url} and {token}"),
    ({"env": {"X": "{value}"}}, "only {base_url} and {token}"),
    ({"env": {"X": "a\nb"}}, "one line"),
    ({"env": {"lower": "x"}}, "not a valid environment variable"),
    ({"env": ["X"]}, "env must be an object"),
    ({"export_env": "yes"}, "true or false"),
    ({"preset": "http", "export_env": True}, "has no environment variables"),
])
async def test_bad_environments_are_refused(api, upstream, body, words):
    status, reply = await api("POST", "connections", body={
        "name": "c", "base_url": upstream.url, "auth": {"scheme": "none"}, **body})
    assert status == 422 and words in reply["message"], reply
    assert (await api("GET", "connections"))[1]["connections"] == []
