"""Issue 14 in the sidebar and the panel: a connection's per-user limits set and shown in the
Connections tab (and enforced by the proxy), run tokens minted, shown once and revoked at
once in the Tokens tab, in real JupyterLab and Chromium against a loopback upstream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..upstream import start_upstream
from .conftest import Lab, Traffic
from .pages import (
    MANAGER,
    dom_text,
    open_lab,
    open_notebook,
    open_sidebar,
    row,
    save,
    wait_for_status,
    write_notebook,
)

pytestmark = pytest.mark.browser


def test_limits_set_in_the_sidebar_are_shown_and_enforced(
    lab: Lab, browser_page: tuple[Any, Traffic], artifacts: Path, canary: str
) -> None:
    page, traffic = browser_page
    with start_upstream(api_key=canary) as upstream:
        open_lab(page, lab)
        sidebar = open_sidebar(page)
        # Four tabs fit the narrow sidebar (they wrap rather than run off its edge).
        edge = sidebar.evaluate("e => e.getBoundingClientRect().right")
        for tab in ("Secrets", "Connections", "Audit", "Tokens"):
            box = sidebar.get_by_role("tab", name=tab).bounding_box()
            assert box is not None and box["x"] + box["width"] <= edge + 1, tab
        sidebar.get_by_role("tab", name="Connections").click()
        sidebar.get_by_role("button", name="New connection").click()
        form = sidebar.locator("form")
        form.get_by_label("Name", exact=True).fill("llm")
        form.get_by_label("Base URL").fill(f"{upstream.url}/v1")
        form.get_by_label("Key", exact=True).press_sequentially(canary)
        # Bad input: the server's own message, inline, and nothing is created.
        form.get_by_label("Rate limit (calls per minute)").fill("lots")
        form.get_by_role("button", name="Create").click()
        form.locator(".jp-secrets-error", has_text="rate_limit must be a whole number").wait_for()
        assert lab.api("GET", "connections/llm").status_code == 404, "nothing half-written"
        form.get_by_label("Rate limit (calls per minute)").fill("2")
        form.get_by_label("Daily quota (calls per day)").fill("1,000")
        form.get_by_label("Export its environment to kernels").check()
        form.get_by_role("button", name="Create").click()
        wait_for_status(sidebar, "Created connection llm.")
        saved = lab.api("GET", "connections/llm").json()
        assert (saved["rate_limit"], saved["daily_quota"], saved["export_env"]) == (2, 1000, True)
        llm = row(sidebar, "llm")
        assert llm.locator(".jp-secrets-limits").text_content() == "Limits: 2/min · 1,000/day"
        assert "exported to kernels" in llm.locator(".jp-secrets-env").text_content()
        page.screenshot(path=str(artifacts / "sidebar-connection-limits.png"))

        # The proxy holds the limit: two calls this minute, the third is refused before
        # anything leaves, with Retry-After.
        calls = [lab.api("GET", "proxy/llm/models") for _ in range(3)]
        assert [c.status_code for c in calls] == [200, 200, 429]
        assert 0 < int(calls[2].headers["Retry-After"]) <= 60
        assert "at most 2 per minute" in calls[2].json()["message"]
        assert len([r for r in upstream.requests if r.path == "/v1/models"]) == 2

        # Edit: the limit removed (empty field), the quota kept; the row follows.
        llm.get_by_role("button", name="Edit connection llm").click()
        edit = llm.locator("form")
        assert edit.get_by_label("Rate limit (calls per minute)").input_value() == "2"
        edit.get_by_label("Rate limit (calls per minute)").fill("")
        edit.get_by_role("button", name="Save").click()
        wait_for_status(sidebar, "Updated connection llm.")
        saved = lab.api("GET", "connections/llm").json()
        assert (saved["rate_limit"], saved["daily_quota"]) == (None, 1000)
        limits = row(sidebar, "llm").locator(".jp-secrets-limits", has_text="1,000/day")
        assert limits.text_content() == "Limits: 1,000/day"
    assert canary not in dom_text(page)
    assert canary not in json.dumps([body for _, body in traffic.responses])


def test_run_tokens_shown_once_and_revoked_from_the_panel(
    lab: Lab, browser_page: tuple[Any, Traffic], artifacts: Path
) -> None:
    page, traffic = browser_page
    notebook = write_notebook(lab.root, "tokens.ipynb",
                              "import jupyter_secrets as js\n\njs.SecretsPanel(tab='tokens')")
    open_notebook(page, lab, "lab/tree/tokens.ipynb")
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-cell')")
    panel = page.locator(f".jp-secrets-panel {MANAGER}")
    tokens = panel.locator(".jp-secrets-tokens")
    tokens.get_by_text("No run tokens yet.").wait_for(timeout=60_000)

    # Bad input first: the server's message, and no token.
    tokens.get_by_role("button", name="New run token").click()
    form = tokens.locator("form")
    form.get_by_label("Name", exact=True).fill("nightly")
    form.get_by_label("Expires after").fill("forever")
    form.get_by_role("button", name="Create").click()
    form.locator(".jp-secrets-error", has_text="ttl must be a positive duration").wait_for()
    assert lab.api("GET", "tokens").json()["tokens"] == []
    form.get_by_label("Expires after").fill("2h")
    form.get_by_role("button", name="Create").click()
    shown = tokens.get_by_role("textbox", name="The new run token nightly")
    shown.wait_for()
    token = shown.input_value()
    assert token.startswith("jsr_")
    page.screenshot(path=str(artifacts / "panel-run-token.png"))

    # The token works as a run would use it: names, with the token alone.
    api = f"{lab.url}api/secrets/v1/"
    assert httpx.get(f"{api}secrets", headers={"Authorization": f"Bearer {token}"}
                     ).status_code == 200
    nightly = row(tokens, "nightly")
    tokens.get_by_role("button", name="Done").click()
    assert shown.count() == 0, "shown once, then gone"
    # The last use is written off the hot path (every half second): reload until it shows.
    for _ in range(20):
        tokens.get_by_role("button", name="Reload the run tokens").click()
        nightly.locator(".jp-secrets-badge", has_text="active").wait_for()
        if nightly.get_by_text("last used").count():
            break
        page.wait_for_timeout(500)
    assert nightly.get_by_text("never used").count() == 0, "its last use is listed"

    # Revoke beside the row: refused from the next call, with the reason.
    nightly.get_by_role("button", name="Revoke run token nightly of").click()
    nightly.get_by_role("button", name="Revoke", exact=True).click()
    wait_for_status(tokens, "Revoked run token nightly.")
    nightly.locator(".jp-secrets-badge", has_text="revoked").wait_for()
    refused = httpx.get(f"{api}secrets", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code in (401, 403)
    assert "revoked" in refused.json()["message"]

    # The token lived only in that field: not in the notebook, its widget state, the page's
    # storage or any websocket frame (the kernel side only displays the panel).
    save(page)
    assert token not in notebook.read_text()
    storage = page.evaluate("JSON.stringify([Object.entries(localStorage), "
                            "Object.entries(sessionStorage)])")
    assert token not in storage
    assert not [f for _, f in traffic.frames if token in f], "never over the kernel's websocket"
    assert token not in dom_text(page)
