"""``notebooks/admin.ipynb`` runs top to bottom in a real kernel against the real REST API.

nbclient has no browser, so the panel's value field would fall back after a few seconds; the
notebook itself only lists metadata, which is what runs here. The executed notebook must not
hold the value of the secret that exists while it runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from .helpers import assert_no_canary

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "admin.ipynb"


async def test_admin_notebook_runs(
    monkeypatch: pytest.MonkeyPatch, jp_serverapp: Any, http_server_client: Any,
    jp_http_port: int, jp_base_url: str, api: Any, canary: str, tmp_path: Path,
) -> None:
    assert (await api("POST", "secrets", body={"name": "OPENAI_API_KEY", "value": canary}))[0] \
        == 201
    # What the server will put in the environment of the kernels it starts (issue 3).
    monkeypatch.setenv("JUPYTER_SECRETS_URL", f"http://127.0.0.1:{jp_http_port}{jp_base_url}")
    monkeypatch.setenv("JUPYTER_SECRETS_TOKEN", jp_serverapp.identity_provider.token)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    await client.async_execute()

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert "OPENAI_API_KEY" in json.dumps(outputs)
    assert_no_canary(canary, nbformat.writes(notebook), where="executed admin.ipynb")
