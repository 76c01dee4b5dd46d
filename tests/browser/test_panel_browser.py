"""The admin panel in a real JupyterLab and Chromium: add, replace, delete, and a canary hunt.

The value is typed into the labextension's field; it must reach the server only in the
browser's own request to ``/api/secrets/v1/secrets``: never in a kernel websocket frame,
the saved notebook (widget state included), the DOM, or any response.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_secrets.crypto import Keyring, open_sealed, reveal
from jupyter_secrets.store import open_store

from ..helpers import assert_no_canary
from .conftest import QUIET, Lab, Traffic

pytestmark = pytest.mark.browser

NAME = "DEMO_API_KEY"
PANEL = ".jp-secrets-panel"
CELL = "from jupyter_secrets.widgets import SecretsPanel\n\npanel = SecretsPanel()\npanel"


def write_notebook(root: Path) -> Path:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    path = root / "admin.ipynb"
    nbformat.write(notebook, path)
    return path


def open_notebook_and_run(page: Any, lab: Lab, path: str = "lab/tree/admin.ipynb") -> Any:
    page.goto(f"{lab.url}{path}?token={lab.token}")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_function(
        "() => window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel"
        "?.status === 'idle'", timeout=60_000)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    panel = page.locator(PANEL)
    panel.wait_for(timeout=60_000)
    return panel


def wait_for_status(panel: Any, text: str) -> None:
    panel.get_by_text(re.compile(re.escape(text))).first.wait_for(timeout=30_000)


def assert_server_stored(lab: Lab, name: str, expected: str, version: int) -> None:
    """The server's store really holds the typed value, at the version the panel reported."""
    response = lab.api("GET", f"secrets/{name}")
    assert response.status_code == 200 and response.json()["version"] == version
    store = open_store(lab.store_url)
    try:
        found = store.get_sealed(name)
        assert found is not None
        record, sealed = found
        plaintext = open_sealed(Keyring.from_text(lab.master_key), record.identity, sealed)
        assert reveal(plaintext) == expected, "the store holds a different value"
    finally:
        store.close()


def assert_proxied_call_uses(lab: Lab, name: str, expected: str) -> None:
    """A call through the egress proxy carries the value typed in the browser.

    The loopback upstream accepts only ``expected`` as its key, so a 200 proves the server
    stored and injected exactly what the admin typed.
    """
    from tests.upstream import start_upstream

    with start_upstream(api_key=expected) as upstream:
        connection = {"name": "check", "base_url": f"{upstream.url}/v1", "secret": name,
                      "auth": {"scheme": "bearer"}}
        assert lab.api("POST", "connections", json=connection).status_code == 201
        try:
            reply = lab.api("POST", "proxy/check/chat/completions",
                            json={"model": "m", "messages": []})
            assert reply.status_code == 200, reply.text
            assert reply.json()["choices"][0]["message"]["content"] == "Hello from upstream"
            assert upstream.requests[-1].headers["Authorization"] == f"Bearer {expected}"
            assert expected not in reply.text
        finally:
            assert lab.api("DELETE", "connections/check").status_code == 204


def test_panel_add_replace_delete_without_the_value_reaching_the_kernel(
    lab: Lab, browser_page: tuple[Any, Traffic], artifacts: Path, canary: str
) -> None:
    page, traffic = browser_page
    first, second = f"{canary}-1", f"{canary}-2"
    notebook_path = write_notebook(lab.root)
    panel = open_notebook_and_run(page, lab)
    panel.get_by_text("No secrets yet.").wait_for(timeout=30_000)

    # Add: metadata in ipywidgets Text fields, the value in the labextension's field.
    panel.get_by_role("button", name="Add secret").click()
    panel.get_by_placeholder("OPENAI_API_KEY").fill("demo api key")
    panel.get_by_placeholder("What it is for").fill("Key for the demo upstream")
    panel.get_by_placeholder("api.openai.com, *.example.com").fill("api.example.com")
    value_input = panel.locator(".jp-secrets-value-input")
    value_input.wait_for()
    assert panel.get_by_text("pass through the kernel").count() == 0, "fell back to the kernel"
    value_input.press_sequentially(first)
    page.screenshot(path=str(artifacts / "panel-add.png"), full_page=True)
    panel.get_by_role("button", name="Save").click()
    wait_for_status(panel, f"Added {NAME} (version 1).")
    assert value_input.count() == 0  # the form closed; its input is gone with the value
    assert_server_stored(lab, NAME, first, version=1)

    # Replace, submitting with Enter in the value field.
    panel.get_by_title(f"Replace the value of {NAME}").click()
    panel.get_by_text(f"Replace the value of {NAME}").wait_for()
    value_input.press_sequentially(second)
    value_input.press("Enter")
    wait_for_status(panel, f"Replaced the value of {NAME} (version 2).")
    assert_server_stored(lab, NAME, second, version=2)
    assert_proxied_call_uses(lab, NAME, second)

    # A connection that uses the secret shows in "Used by" after Refresh.
    connection = {"name": "demo", "base_url": "https://api.example.com", "secret": NAME,
                  "auth": {"scheme": "bearer"}}
    assert lab.api("POST", "connections", json=connection).status_code == 201
    panel.get_by_role("button", name="Refresh").click()
    panel.get_by_text("demo", exact=True).wait_for()
    panel.screenshot(path=str(artifacts / "panel.png"))

    # Delete: the confirmation says what uses the secret before anything is removed.
    panel.get_by_title(f"Delete {NAME}").click()
    panel.get_by_text(f"Delete {NAME}?").wait_for()
    panel.get_by_text("It is used by demo: it will stop working.").wait_for()
    panel.screenshot(path=str(artifacts / "panel-delete.png"))
    assert lab.api("GET", f"secrets/{NAME}").status_code == 200
    panel.locator(".jp-secrets-form").get_by_role("button", name="Delete").click()
    wait_for_status(panel, f"Deleted {NAME}.")
    assert lab.api("GET", f"secrets/{NAME}").status_code == 404

    # Save the notebook (with widget state) and hunt for the canary everywhere.
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)
    saved = notebook_path.read_text("utf-8")
    assert "application/vnd.jupyter.widget-state+json" in saved
    dom = page.content()
    inputs = json.dumps(page.evaluate(
        "Array.from(document.querySelectorAll('input, textarea')).map(e => e.value)"))

    kernel_frames = [payload for url, payload in traffic.frames if "/api/kernels/" in url]
    assert kernel_frames, "no kernel websocket traffic was recorded"
    assert any('"event"' in f and '"saved"' in f for f in kernel_frames), \
        "the front-end never told the kernel it saved"
    assert_no_canary(canary, *kernel_frames, where="kernel websocket frame")
    assert_no_canary(canary, *(p for _, p in traffic.frames), where="websocket frame")
    assert_no_canary(canary, saved, where="saved notebook")
    assert_no_canary(canary, dom, inputs, where="DOM after saving")
    assert_no_canary(canary, *(body for _, body in traffic.responses), where="response body")
    assert_no_canary(canary, lab.log(), where="server log")

    # The value left the browser exactly twice, to the secrets REST API and nowhere else.
    carriers = [(m, u.split("?")[0]) for m, u, body in traffic.requests if canary in body]
    assert carriers == [("POST", f"{lab.url}api/secrets/v1/secrets"),
                        ("PUT", f"{lab.url}api/secrets/v1/secrets/{NAME}")]


@pytest.mark.parametrize("disabled_extensions", [{**QUIET, "jupyter-secrets": True}])
def test_without_the_labextension_the_panel_falls_back_and_says_so(
    lab: Lab, browser_page: tuple[Any, Traffic], artifacts: Path, canary: str
) -> None:
    page, traffic = browser_page
    notebook_path = write_notebook(lab.root)
    panel = open_notebook_and_run(page, lab)
    panel.get_by_role("button", name="Add secret").click()
    panel.get_by_text("the value will pass through the kernel").wait_for(timeout=30_000)
    panel.get_by_placeholder("OPENAI_API_KEY").fill(NAME)
    panel.locator(".jp-secrets-form input[type=password]").fill(canary)
    panel.get_by_role("button", name="Save").click()
    wait_for_status(panel, f"Added {NAME} (version 1). The value passed through the kernel")
    panel.screenshot(path=str(artifacts / "panel-fallback.png"))
    assert_server_stored(lab, NAME, canary, version=1)

    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)
    inputs = json.dumps(page.evaluate(
        "Array.from(document.querySelectorAll('input, textarea')).map(e => e.value)"))
    # By design the value crossed the kernel websocket here; it must not have stayed anywhere.
    assert any(canary in payload for _, payload in traffic.frames)
    assert_no_canary(canary, notebook_path.read_text("utf-8"), where="saved notebook")
    assert_no_canary(canary, page.content(), inputs, where="DOM after saving")
    assert_no_canary(canary, lab.log(), where="server log")


@pytest.mark.parametrize("frontend", ["notebook"])
def test_notebook7_loads_the_value_entry(
    lab: Lab, browser_page: tuple[Any, Traffic], artifacts: Path, canary: str
) -> None:
    page, traffic = browser_page
    write_notebook(lab.root)
    panel = open_notebook_and_run(page, lab, "notebooks/admin.ipynb")
    panel.get_by_role("button", name="Add secret").click()
    panel.get_by_placeholder("OPENAI_API_KEY").fill(NAME)
    panel.locator(".jp-secrets-value-input").press_sequentially(canary)
    panel.get_by_role("button", name="Save").click()
    wait_for_status(panel, f"Added {NAME} (version 1).")
    assert panel.get_by_text("passed through the kernel").count() == 0
    page.screenshot(path=str(artifacts / "panel-notebook7.png"))
    assert_server_stored(lab, NAME, canary, version=1)
    assert_no_canary(canary, *(p for _, p in traffic.frames), where="websocket frame")
