"""notebooks/quickstart.ipynb runs top to bottom (nbclient) in a server-started kernel."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .helpers import assert_no_canary

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "quickstart.ipynb"


async def test_quickstart_runs_against_a_local_upstream(
    runtime, jp_serverapp, jp_fetch, http_server, upstream, canary, tmp_path
):
    runtime.connections.create("admin", {
        "name": "openai", "preset": "openai", "base_url": f"{upstream.url}/v1", "value": canary})
    runtime.secrets.create("admin", "EXAMPLE_TOKEN", canary,
                                       allowed_hosts=[f"127.0.0.1:{upstream.port}"])
    nb = nbformat.read(NOTEBOOK, as_version=4)
    (params,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    params.source += f'\nECHO_URL = "{upstream.url}/echo/get"\n'

    response = await jp_fetch("api", "kernels", method="POST", body="{}")
    kernel_id = json.loads(response.body)["id"]
    kernel_manager = jp_serverapp.kernel_manager.get_kernel(kernel_id)
    runner = NotebookClient(nb, km=kernel_manager, timeout=120)
    try:
        await runner.async_execute()
    finally:
        if runner.kc is not None:  # nbclient leaves a client it did not start the kernel for
            runner.kc.stop_channels()
    await jp_fetch("api", "kernels", kernel_id, method="DELETE")

    outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "connections: ['openai']" in outputs
    assert "200 Hello from upstream" in outputs
    streamed = "".join(o.get("text", "") for o in nb.cells[7].outputs)
    assert streamed.strip() == "Hello from upstream", "the SDK stream, token by token"
    assert "Bearer [REDACTED:EXAMPLE_TOKEN]" in outputs
    assert "never gives a secret's value" in outputs
    saved = tmp_path / "ran.ipynb"
    nbformat.write(nb, saved)
    assert_no_canary(canary, outputs, saved.read_text(), where="executed notebook")
