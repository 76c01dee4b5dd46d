"""Other kernels (R, Julia, JavaScript, a shell) call the proxy over plain HTTP.

Every kernel the server starts gets ``JUPYTER_SECRETS_URL`` and ``JUPYTER_SECRETS_TOKEN``,
whatever its language. ``curl`` in a subprocess, with only those two variables from a real
kernel, stands in for httr2, HTTP.jl and fetch (``docs/other-kernels.md``): the upstream
gets the stored key, curl gets a scrubbed answer, and the token itself goes nowhere else.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil

import pytest

from .helpers import assert_no_canary
from .kernels import Kernel
from .upstream import CONTENT


@pytest.fixture
def kernel_env(jp_fetch, jp_serverapp, http_server):
    """``await kernel_env()``: the two variables a freshly started kernel got, read inside it."""
    kernels: list[Kernel] = []

    async def start() -> dict[str, str]:
        response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({}))
        kernel = await Kernel(jp_serverapp, json.loads(response.body)["id"]).start()
        kernels.append(kernel)
        out = await kernel.check("import os, json; print(json.dumps({k: os.environ[k] for k in "
                                 "('JUPYTER_SECRETS_URL', 'JUPYTER_SECRETS_TOKEN')}))")
        return dict(json.loads(out.strip().splitlines()[-1]))

    yield start
    for kernel in kernels:
        kernel.stop()


async def curl(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run curl in a shell, as a kernel's ``system()`` or ``!`` would (the server keeps
    serving: this waits without blocking its event loop). Returns the exit code and stdout."""
    assert shutil.which("curl"), "curl is missing: `make test` installs it (make curl-deps)"
    script = 'curl -sS -H "Authorization: Bearer $JUPYTER_SECRETS_TOKEN" "$@"'
    process = await asyncio.create_subprocess_exec(
        "sh", "-c", script, "curl", *args, env={"PATH": os.environ["PATH"], **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await process.communicate()
    assert not stderr, stderr
    return process.returncode or 0, stdout.decode()


async def test_curl_with_the_kernel_variables_uses_connections(
    runtime, upstream, canary, kernel_env
):
    for name, preset, base in (("up", "http", upstream.url),
                               ("llm", "openai", f"{upstream.url}/v1"),
                               ("gemini", "gemini", upstream.url)):
        runtime.connections.create("admin", {"name": name, "preset": preset, "base_url": base,
                                             "value": canary})
    env = await kernel_env()
    url, token = env["JUPYTER_SECRETS_URL"], env["JUPYTER_SECRETS_TOKEN"]

    # A plain call: the upstream echoes what it got, the key comes back redacted.
    code, echoed = await curl(env, f"{url}/proxy/up/echo/report?x=1")
    assert code == 0
    assert json.loads(echoed)["headers"]["Authorization"] == "Bearer [REDACTED:UP_CONNECTION_KEY]"
    assert upstream.requests[-1].headers["Authorization"] == f"Bearer {canary}"

    # Streaming, as an R or Julia loop over the body would read it.
    code, streamed = await curl(env, "-N", "-H", "Content-Type: application/json",
                                "-d", '{"model": "m", "stream": true, "messages": []}',
                                f"{url}/proxy/llm/chat/completions")
    events = [json.loads(line[6:]) for line in streamed.splitlines()
              if line.startswith("data: {")]
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events) == CONTENT
    assert streamed.rstrip().endswith("data: [DONE]")

    # The token where Gemini's SDK puts a key, and a copy of it in another header: the
    # upstream gets the stored key in x-goog-api-key and never sees the token.
    code, echoed = await curl(env, "-H", f"x-goog-api-key: {token}",
                              "-H", f"X-Trace: t={token}", f"{url}/proxy/gemini/echo/g")
    assert code == 0
    seen = upstream.requests[-1]
    assert seen.headers["x-goog-api-key"] == canary
    assert "X-Trace" not in seen.headers and "Authorization" not in seen.headers
    assert token not in json.dumps(list(seen.headers.get_all()))

    # The token in the query string is refused before anything leaves.
    before = len(upstream.requests)
    code, refused = await curl(env, f"{url}/proxy/gemini/echo/q?key={token}")
    assert "query string holds your kernel token" in json.loads(refused)["message"]
    assert len(upstream.requests) == before

    assert_no_canary(canary, echoed, streamed, refused, where="curl output")
    for request in upstream.requests:
        assert token not in request.query and token.encode() not in request.body
