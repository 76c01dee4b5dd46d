"""What the browser tests do to a page, written once: open Lab, Notebook 7, the sidebar or
a notebook; read the server's store; hunt the canary in everything the browser saw."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat

from jupyter_secrets.crypto import Keyring, open_sealed, reveal
from jupyter_secrets.services.secrets import SecretsService
from jupyter_secrets.store import open_store

from ..helpers import assert_no_canary
from .conftest import Lab, Traffic

MANAGER = ".jp-secrets-manager"
PANEL_CELL = "import jupyter_secrets as js\n\npanel = js.SecretsPanel()\npanel"
KERNEL_IDLE = ("() => window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel"
               "?.status === 'idle'")


def open_lab(page: Any, lab: Lab, path: str = "lab") -> None:
    """Open a page of the app and wait until it has restored its layout (which moves focus:
    typing before then loses keys)."""
    page.goto(f"{lab.url}{path}?token={lab.token}")
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)
    page.evaluate("async () => { await window.jupyterapp.started; "
                  "await window.jupyterapp.restored; }")
    if path == "lab":  # an empty layout gets a Launcher, which takes focus once it is drawn
        page.wait_for_function(
            "() => document.activeElement?.closest('.jp-Launcher') != null", timeout=30_000)


def open_sidebar(page: Any) -> Any:
    """Click the key icon in JupyterLab's left bar; the sidebar's manager, once loaded."""
    page.locator('.jp-SideBar [data-id="jp-secrets-sidebar"]').click()
    sidebar = page.locator(f".jp-secrets-sidebar {MANAGER}")
    sidebar.locator(".jp-secrets-tab-button").first.wait_for(timeout=30_000)
    return sidebar


def row(scope: Any, name: str) -> Any:
    return scope.locator(f'li.jp-secrets-row[data-name="{name}"]')


def wait_for_status(scope: Any, text: str) -> None:
    scope.locator(".jp-secrets-status", has_text=re.compile(re.escape(text))).first.wait_for(
        timeout=30_000)


def focused(page: Any) -> dict[str, str]:
    """What has keyboard focus: tag, id, label text (via <label for>) and button text."""
    return dict(page.evaluate("""() => {
        const e = document.activeElement;
        const label = e && e.id ? document.querySelector(`label[for="${e.id}"]`) : null;
        return {tag: e ? e.tagName.toLowerCase() : '', id: (e && e.id) || '',
                label: label ? label.textContent : '', text: (e && e.textContent) || '',
                type: (e && e.type) || ''};
    }"""))


def write_notebook(root: Path, name: str = "admin.ipynb", source: str = PANEL_CELL) -> Path:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    path = root / name
    nbformat.write(notebook, path)
    return path


def open_notebook(page: Any, lab: Lab, url_path: str) -> None:
    open_lab(page, lab, url_path)
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_function(KERNEL_IDLE, timeout=60_000)


def run_all(page: Any) -> None:
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")


def kernel_output(page: Any, code: str) -> str:
    """Run ``code`` in a new last cell of the current notebook; its text output."""
    return str(page.evaluate("""async (code) => {
        const panel = window.jupyterapp.shell.currentWidget;
        const model = panel.content.model;
        model.sharedModel.insertCell(model.cells.length, {cell_type: 'code', source: code});
        panel.content.activeCellIndex = model.cells.length - 1;
        await window.jupyterapp.commands.execute('notebook:run-cell');
        const cell = panel.content.activeCell ?? panel.content.widgets[model.cells.length - 1];
        const outputs = model.cells.get(model.cells.length - 1).outputs;
        for (let i = 0; i < 100 && outputs.length === 0; i++) {
            await new Promise(r => setTimeout(r, 100));
        }
        return outputs.toJSON().map(o => o.text ?? JSON.stringify(o.data ?? o)).join('');
    }""", code))


def save(page: Any) -> None:
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)


def seed(lab: Lab, count: int, *, prefix: str = "KEY", value: str = "seeded-value") -> None:
    """``count`` secrets straight into the server's store (what a big workspace holds)."""
    service = SecretsService(open_store(lab.store_url), Keyring.from_text(lab.master_key))
    try:
        for start in range(0, count, 100):
            service.batch("ops", [{"key": f"{prefix}_{i:04d}", "value": f"{value}-{i:04d}"}
                                  for i in range(start, min(start + 100, count))])
    finally:
        service.store.close()


def stored_value(lab: Lab, name: str) -> tuple[int, str]:
    """(version, value) the server's store holds for ``name``, opened with the server's key."""
    store = open_store(lab.store_url)
    try:
        found = store.get_sealed(name)
        assert found is not None, f"{name} is not in the store"
        record, sealed = found
        plaintext = open_sealed(Keyring.from_text(lab.master_key), record.identity, sealed)
        return record.version, reveal(plaintext)
    finally:
        store.close()


def dom_text(page: Any) -> str:
    """The DOM as HTML plus the live value of every input (which HTML does not show)."""
    values = page.evaluate(
        "Array.from(document.querySelectorAll('input, textarea')).map(e => e.value)")
    return page.content() + json.dumps(values)


def hunt(canary: str, traffic: Traffic, lab: Lab, *files: Path, page: Any = None) -> None:
    """The canary is nowhere it must not be: websocket frames, responses, server log, files,
    and (when a page is given) the DOM and every input."""
    assert_no_canary(canary, *(p for _, p in traffic.frames), where="websocket frame")
    assert_no_canary(canary, *(body for _, body in traffic.responses), where="response body")
    assert_no_canary(canary, lab.log(), where="server log")
    for path in files:
        assert_no_canary(canary, path.read_text("utf-8"), where=f"file {path.name}")
    if page is not None:
        assert_no_canary(canary, dom_text(page), where="DOM")


def carriers(traffic: Traffic, lab: Lab, canary: str) -> list[tuple[str, str]]:
    """(method, API path) of every browser request whose body held the canary."""
    api = f"{lab.url}api/secrets/v1/"
    return [(m, u.split("?")[0].replace(api, "")) for m, u, body in traffic.requests
            if canary in body]
