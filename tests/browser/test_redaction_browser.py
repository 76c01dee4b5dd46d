"""A save the server redacted is announced (names only) and the open document is reloaded
from the file, in JupyterLab 4 and Notebook 7: the pasted key is gone from the page too."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import Lab, Traffic
from .pages import hunt, open_notebook, write_notebook

pytestmark = pytest.mark.browser
NAME = "OPENAI_API_KEY"


@pytest.mark.parametrize(("frontend", "url"), [("lab", "lab/tree/pasted.ipynb"),
                                               ("notebook", "notebooks/pasted.ipynb")])
def test_a_redacted_save_is_announced_and_the_page_reloads_the_file(
    lab: Lab, browser_page: tuple[Any, Traffic], artifacts: Path, canary: str, frontend: str,
    url: str
) -> None:
    page, traffic = browser_page
    assert lab.api("POST", "secrets", json={"name": NAME, "value": canary}).status_code == 201
    notebook = write_notebook(lab.root, "pasted.ipynb", "")
    open_notebook(page, lab, url)

    # A person pastes the key into a cell and saves with the keyboard.
    page.locator(".jp-Cell .cm-content").first.click()
    page.keyboard.type(f"KEY = '{canary}'")
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")

    toast = page.get_by_text(re.compile(
        rf"pasted\.ipynb: the value of {NAME} was redacted on save; reloaded from the file\."))
    toast.wait_for(timeout=30_000)
    editor = page.locator(".jp-Cell .cm-content").first
    editor.get_by_text(f"[REDACTED:{NAME}]", exact=False).wait_for(timeout=30_000)
    page.wait_for_timeout(800)  # the toast slides in; let the screenshot show it
    page.screenshot(path=str(artifacts / f"redaction-{frontend}.png"))

    assert f"[REDACTED:{NAME}]" in notebook.read_text("utf-8")
    dirty = page.evaluate("window.jupyterapp.shell.currentWidget.context.model.dirty")
    assert dirty is False, "the page matches the file"
    sources = page.evaluate("window.jupyterapp.shell.currentWidget.content.model.sharedModel"
                            ".cells.map(c => c.getSource())")
    assert sources == [f"KEY = '[REDACTED:{NAME}]'"]
    # After the save the pasted key is nowhere: not the page, the file, nor any answer.
    hunt(canary, traffic, lab, notebook, page=page)
