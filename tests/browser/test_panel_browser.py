"""The notebook panel (``js.SecretsPanel()``) in real JupyterLab 4 and Notebook 7: the
browser draws it and sends every value itself; 1,000 secrets page and search; two
front-ends on one kernel; without the labextension, a read-only table.

The kernel hears only names: the canary is hunted in every websocket frame, the saved
notebook (widget state included) and the DOM after saving.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from .conftest import QUIET, Lab, Traffic, watch
from .pages import (
    PANEL_CELL,
    carriers,
    hunt,
    kernel_output,
    open_notebook,
    row,
    run_all,
    save,
    seed,
    stored_value,
    wait_for_status,
    write_notebook,
)

pytestmark = pytest.mark.browser
PANEL = ".jp-secrets-panel .jp-secrets-manager"
DASH = "\u2013"  # the pager says "1<en dash>50 of 1,000"


@pytest.mark.slow
def test_panel_pages_and_searches_1000_secrets(
    lab: Lab, browser_page: tuple[Any, Traffic], artifacts: Path, canary: str
) -> None:
    page, traffic = browser_page
    seed(lab, 1000)
    notebook = write_notebook(lab.root)
    open_notebook(page, lab, "lab/tree/admin.ipynb")
    run_all(page)
    panel = page.locator(PANEL)
    pager = panel.locator(".jp-secrets-pager")
    pager.get_by_text(f"1{DASH}50 of 1,000").wait_for(timeout=60_000)
    assert panel.locator("li.jp-secrets-row").count() == 50, "one page in the DOM, not 1,000"
    page.screenshot(path=str(artifacts / "panel-1000.png"))

    panel.get_by_role("button", name="Next page").click()
    pager.get_by_text(f"51{DASH}100 of 1,000").wait_for()
    assert row(panel, "KEY_0050").count() == 1 and row(panel, "KEY_0000").count() == 0
    panel.get_by_label("Search").fill("KEY_0999")
    row(panel, "KEY_0999").wait_for()
    assert panel.locator("li.jp-secrets-row").count() == 1
    panel.get_by_label("Search").fill("")
    pager.get_by_text(f"1{DASH}50 of 1,000").wait_for()

    # Add from the panel: the browser sends the value, the kernel hears the name.
    panel.get_by_role("button", name="Add secret").click()
    panel.get_by_label("Name", exact=True).fill("PANEL_KEY")
    panel.get_by_label("Value", exact=True).press_sequentially(canary)
    panel.get_by_role("button", name="Save").click()
    wait_for_status(panel, "Added PANEL_KEY (version 1).")
    pager.get_by_text("of 1,001").wait_for()
    assert stored_value(lab, "PANEL_KEY") == (1, canary)
    out = kernel_output(page, "print(len(panel.records), 'PANEL_KEY' in "
                              "{r['name'] for r in panel.records}, panel.mode)")
    assert "1001 True frontend" in out, out

    save(page)
    saved = notebook.read_text("utf-8")
    assert "application/vnd.jupyter.widget-state+json" in saved
    kernel_frames = [p for url, p in traffic.frames if "/api/kernels/" in url]
    assert any('"changed"' in f and "PANEL_KEY" in f for f in kernel_frames), \
        "the browser told the kernel what changed, by name"
    hunt(canary, traffic, lab, notebook, page=page)
    assert carriers(traffic, lab, canary) == [("POST", "secrets")]


@pytest.mark.slow
@pytest.mark.parametrize("frontend", ["lab"])
def test_two_frontends_on_one_kernel(
    lab: Lab, browser_page: tuple[Any, Traffic], artifacts: Path, canary: str
) -> None:
    """JupyterLab and Notebook 7 show the same panel widget of one kernel. The value typed in
    one is sent by that one; the other, with its own Add form open, is untouched."""
    lab_page, traffic = browser_page
    notebook = lab.root / "admin.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PANEL_CELL),
                                         nbformat.v4.new_code_cell("panel")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, notebook)
    open_notebook(lab_page, lab, "lab/tree/admin.ipynb")
    lab_page.evaluate("window.jupyterapp.commands.execute('notebook:run-cell')")
    in_lab = lab_page.locator(PANEL)
    in_lab.get_by_role("button", name="Add secret").wait_for(timeout=60_000)

    nb7_page = watch(lab_page.context.new_page(), traffic)
    open_notebook(nb7_page, lab, "notebooks/admin.ipynb")
    kernels = [p.evaluate("window.jupyterapp.shell.currentWidget.sessionContext.session"
                          ".kernel.id") for p in (lab_page, nb7_page)]
    assert kernels[0] == kernels[1], "one kernel behind both front-ends"
    nb7_page.evaluate("""async () => {
        const panel = window.jupyterapp.shell.currentWidget;
        panel.content.activeCellIndex = 1;
        await window.jupyterapp.commands.execute('notebook:run-cell');
    }""")
    in_nb7 = nb7_page.locator(PANEL)
    in_nb7.get_by_role("button", name="Add secret").wait_for(timeout=60_000)

    # Lab opens the Add form and leaves it empty; Notebook 7 types the value and saves.
    in_lab.get_by_role("button", name="Add secret").click()
    in_nb7.get_by_role("button", name="Add secret").click()
    in_nb7.get_by_label("Name", exact=True).fill("SHARED_KEY")
    in_nb7.get_by_label("Value", exact=True).press_sequentially(canary)
    in_nb7.get_by_role("button", name="Save").click()
    wait_for_status(in_nb7, "Added SHARED_KEY (version 1).")
    nb7_page.screenshot(path=str(artifacts / "panel-notebook7.png"))
    assert stored_value(lab, "SHARED_KEY") == (1, canary)
    lab_form = in_lab.locator("form.jp-secrets-form")
    assert lab_form.count() == 1 and lab_form.locator(".jp-secrets-error").inner_text() == ""
    assert lab_form.get_by_label("Value", exact=True).input_value() == ""
    events = lab.api("GET", "audit", params={"secret": "SHARED_KEY"}).json()["events"]
    assert [e["action"] for e in events] == ["create"], "created once, by one front-end"

    # The other view sees it after a refresh; the kernel already knows (by name).
    lab_form.get_by_role("button", name="Cancel").click()
    in_lab.get_by_role("button", name="Reload the secrets list").click()
    row(in_lab, "SHARED_KEY").wait_for()
    lab_page.screenshot(path=str(artifacts / "panel-lab-after-notebook7.png"))
    out = kernel_output(lab_page, "print(sorted(r['name'] for r in panel.records))")
    assert "['SHARED_KEY']" in out, out

    save(lab_page)
    hunt(canary, traffic, lab, notebook, page=lab_page)
    hunt(canary, traffic, lab, page=nb7_page)
    assert carriers(traffic, lab, canary) == [("POST", "secrets")]


@pytest.mark.parametrize("disabled_extensions", [{**QUIET, "jupyter-secrets": True}])
def test_without_the_labextension_a_read_only_table_says_how_to_get_it(
    lab: Lab, browser_page: tuple[Any, Traffic], artifacts: Path
) -> None:
    page, traffic = browser_page
    for name in ("ALPHA_KEY", "BETA_KEY"):
        assert lab.api("POST", "secrets", json={"name": name, "value": f"{name}-value-x"}
                       ).status_code == 201
    notebook = write_notebook(lab.root)
    open_notebook(page, lab, "lab/tree/admin.ipynb")
    run_all(page)
    fallback = page.locator(".jp-secrets-fallback")
    fallback.get_by_text(re.compile("Read-only view")).wait_for(timeout=60_000)
    assert fallback.get_by_text("pip install jupyter-secrets").count() == 1
    table = fallback.locator("table")
    assert "ALPHA_KEY" in table.inner_text() and "BETA_KEY" in table.inner_text()
    assert page.locator("input[type=password]").count() == 0, "nowhere to type a value"
    fallback.get_by_role("textbox", name="Search").fill("beta")
    page.wait_for_function("() => !document.querySelector('.jp-secrets-fallback table')"
                           ".innerText.includes('ALPHA_KEY')")
    page.screenshot(path=str(artifacts / "panel-read-only.png"))
    save(page)
    saved = json.loads(notebook.read_text("utf-8"))
    assert "ALPHA_KEY-value" not in json.dumps(saved)
    assert not [p for _, p in traffic.frames if "_KEY-value" in p], "names only, never values"
