"""The sidebar and the notebook panel in client mode: a real JupyterLab whose server uses a
real secrets service (``jupyter secrets serve`` in a subprocess, another origin, CORS).

The browser talks to the service itself with the admin token a person pasted: the token
stays in the tab's sessionStorage (never localStorage) and goes only to the service; the
value typed goes only to the service; the Jupyter server sees neither (its requests, its log,
its files and every websocket frame are searched). A sign-in asked for in the middle of a
write keeps the open form, what was typed in it and the filters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jupyter_secrets.crypto import Keyring, open_sealed, reveal
from jupyter_secrets.store import open_store

from ..helpers import assert_no_canary
from ..live import LiveService
from .conftest import Lab, Traffic, _free_port, start_lab
from .pages import (
    KERNEL_IDLE,
    MANAGER,
    dom_text,
    hunt,
    kernel_output,
    open_lab,
    row,
    run_all,
    save,
    wait_for_status,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
USER = "alice"  # the Lab's user at the service (its server token is minted for her)
SIDEBAR = f".jp-secrets-sidebar {MANAGER}"
PANEL = f".jp-secrets-panel {MANAGER}"


@pytest.fixture
def lab_port() -> int:
    """The Lab's port, chosen first: the service must allow the Lab's origin."""
    return _free_port()


@pytest.fixture
def service(tmp_path: Path, lab_port: int) -> Iterator[LiveService]:
    svc = LiveService(tmp_path / "service", config={
        "service_allow_origins": [f"http://127.0.0.1:{lab_port}"],
        "groups": {"analysts": ["bob"]},
    }).start()
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture
def lab(tmp_path: Path, service: LiveService, lab_port: int) -> Iterator[Lab]:
    """JupyterLab in client mode: no key, no store; its server token is ``USER``'s."""
    (tmp_path / "lab").mkdir()
    with start_lab(tmp_path / "lab", port=lab_port,
                   service=(service.url, service.server_token(USER))) as lab:
        yield lab


def at_service(service: LiveService, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{service.api}/{path}", headers=service.admin, timeout=30,
                         **kwargs)


def service_value(service: LiveService, name: str) -> tuple[int, str]:
    """(version, value) in the service's store, opened with the service's key."""
    store = open_store(service.store_url or f"sqlite:///{service.root}/store/s.db")
    try:
        found = store.get_sealed(name)
        assert found is not None, f"{name} is not in the service's store"
        record, sealed = found
        return record.version, reveal(open_sealed(Keyring.from_text(service.key),
                                                  record.identity, sealed))
    finally:
        store.close()


def files_text(root: Path) -> Iterator[tuple[Path, str]]:
    for path in root.rglob("*"):
        if path.is_file():
            yield path, path.read_bytes().decode("latin-1")


def storage(page: Any, which: str) -> dict[str, str]:
    return dict(page.evaluate(f"() => Object.assign({{}}, window.{which})"))


def sign_in(scope: Any, token: str) -> None:
    field = scope.get_by_label("Admin token", exact=True)
    field.wait_for(timeout=60_000)
    field.fill(token)
    field.press("Enter")


def test_sidebar_and_panel_against_a_standalone_service(
    lab: Lab, service: LiveService, browser_page: tuple[Any, Traffic], artifacts: Path,
    canary: str, tmp_path: Path,
) -> None:
    page, traffic = browser_page
    first, second = f"{canary}-1", f"{canary}-2"
    token = service.admin_token
    info = lab.api("GET", "info").json()
    assert info == {"mode": "client", "api_url": f"{service.url}api/secrets/v1"}
    assert at_service(service, "POST", "secrets", json={
        "name": "SEEDED_KEY", "value": "seeded-value-1234", "allowed_hosts": ["api.example.com"],
    }).status_code == 201

    # The sidebar asks for the service's admin token, and says where it goes.
    open_lab(page, lab)
    page.locator('.jp-SideBar [data-id="jp-secrets-sidebar"]').click()
    sidebar = page.locator(SIDEBAR)
    prompt = sidebar.locator(".jp-secrets-signin")
    prompt.get_by_label("Admin token", exact=True).wait_for(timeout=60_000)
    assert service.url in prompt.inner_text()
    assert service.url in sidebar.locator(".jp-secrets-where").inner_text()
    page.screenshot(path=str(artifacts / "client-sign-in.png"))
    sign_in(sidebar, "not-the-admin-token-" + "x" * 20)
    prompt.get_by_text("The secrets service refused this token").wait_for()
    sign_in(sidebar, token)
    row(sidebar, "SEEDED_KEY").wait_for(timeout=30_000)
    assert prompt.is_hidden()
    assert "admin" in sidebar.locator(".jp-secrets-who").inner_text()

    # Add a secret; the value typed here goes to the service.
    sidebar.get_by_role("button", name="Add secret").click()
    sidebar.get_by_label("Name", exact=True).fill("demo key")
    sidebar.get_by_label("Allowed hosts").fill("api.example.com")
    sidebar.get_by_label("Value", exact=True).press_sequentially(first)
    sidebar.get_by_role("button", name="Save").click()
    wait_for_status(sidebar, "Added DEMO_KEY (version 1).")
    assert service_value(service, "DEMO_KEY") == (1, first)
    assert row(sidebar, "DEMO_KEY").locator(".jp-secrets-shared").text_content() == \
        "Shared with: everyone"

    # Share it with a user and a group (admins see and edit who it is shared with).
    demo = row(sidebar, "DEMO_KEY")
    demo.get_by_role("button", name="Edit DEMO_KEY").click()
    form = demo.locator("form")
    sharing = form.locator("fieldset.jp-secrets-sharing")
    assert sharing.locator("legend").inner_text() == "Shared with"
    assert form.get_by_label("everyone", exact=True).is_checked()
    assert form.get_by_label("Users", exact=True).is_hidden()
    form.get_by_label("users and groups").check()
    form.get_by_role("button", name="Save").click()
    form.get_by_text("List at least one user or group, or share with everyone.").wait_for()
    form.get_by_label("Users", exact=True).fill("bob")
    form.get_by_label("Groups", exact=True).fill("analysts")
    page.screenshot(path=str(artifacts / "client-sharing.png"))
    form.get_by_role("button", name="Save").click()
    wait_for_status(sidebar, "Updated DEMO_KEY.")
    assert at_service(service, "GET", "secrets/DEMO_KEY").json()["shared_with"] == {
        "users": ["bob"], "groups": ["analysts"]}
    assert row(sidebar, "DEMO_KEY").locator(".jp-secrets-shared").text_content() == \
        "Shared with: users bob; groups analysts"

    # A reload keeps the tab's token (sessionStorage) and nothing in localStorage.
    page.reload()
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)
    page.evaluate("async () => { await window.jupyterapp.restored; }")
    if page.locator(SIDEBAR).count() == 0:  # the layout may or may not restore it open
        page.locator('.jp-SideBar [data-id="jp-secrets-sidebar"]').click()
    sidebar = page.locator(SIDEBAR)
    row(sidebar, "DEMO_KEY").locator(".jp-secrets-shared", has_text="users bob").wait_for(
        timeout=60_000)
    assert sidebar.locator(".jp-secrets-signin").is_hidden(), "no new sign-in after a reload"
    assert token not in json.dumps(storage(page, "localStorage"))
    assert token in storage(page, "sessionStorage").values()

    # A sign-in asked for in the middle of a write keeps the form, its fields and filters.
    sidebar.get_by_label("Search").fill("key")
    sidebar.get_by_role("button", name="Add secret").click()
    sidebar.get_by_label("Name", exact=True).fill("late key")
    sidebar.get_by_label("Value", exact=True).press_sequentially(second)
    sidebar.get_by_role("button", name="Forget the admin token in this browser tab").click()
    prompt = sidebar.locator(".jp-secrets-signin")
    prompt.get_by_label("Admin token", exact=True).wait_for()
    assert token not in json.dumps(storage(page, "sessionStorage"))
    assert sidebar.locator(".jp-secrets-add-slot form").get_by_label("Value", exact=True) \
        .input_value() == second, "the open form kept what was typed"
    sidebar.locator(".jp-secrets-add-slot").get_by_role("button", name="Save").click()
    page.screenshot(path=str(artifacts / "client-sign-in-during-save.png"))
    sign_in(sidebar, token)
    wait_for_status(sidebar, "Added LATE_KEY (version 1).")
    assert service_value(service, "LATE_KEY") == (1, second)
    assert sidebar.get_by_label("Search").input_value() == "key", "the filter is intact"

    # The notebook panel: the same client (already signed in), the kernel side at the service.
    notebook = write_notebook(lab.root)
    page.goto(f"{lab.url}lab/tree/admin.ipynb?token={lab.token}")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_function(KERNEL_IDLE, timeout=60_000)
    run_all(page)
    panel = page.locator(PANEL)
    row(panel, "DEMO_KEY").wait_for(timeout=60_000)
    # The kernel side reads at the service with its kernel token, as USER: DEMO_KEY is shared
    # with bob and analysts only, so USER's kernel does not see it (the admin's browser does).
    names = "print(panel.mode, sorted(r['name'] for r in panel.records))"
    assert kernel_output(page, names).strip() == "frontend ['LATE_KEY', 'SEEDED_KEY']"
    row(panel, "DEMO_KEY").get_by_role("button", name="Edit DEMO_KEY").click()
    panel_form = row(panel, "DEMO_KEY").locator("form")
    assert panel_form.get_by_label("users and groups").is_checked()
    assert panel_form.get_by_label("Users", exact=True).input_value() == "bob"
    panel_form.get_by_label("everyone", exact=True).check()
    panel_form.get_by_role("button", name="Save").click()
    wait_for_status(panel, "Updated DEMO_KEY.")
    assert at_service(service, "GET", "secrets/DEMO_KEY").json()["shared_with"] == "everyone"
    assert "'DEMO_KEY'" in kernel_output(page, names), "shared with everyone: USER sees it"
    page.screenshot(path=str(artifacts / "client-panel.png"))
    save(page)

    # Where the canary and the admin token went: only to the service.
    service_origin = service.url.rstrip("/")
    lab_origin = lab.url.rstrip("/")
    carriers = [(m, u.split("?")[0]) for m, u, body in traffic.requests if canary in body]
    assert carriers == [("POST", f"{service.api}/secrets")] * 2
    for request in traffic.sent:
        if not request.url.startswith(lab_origin):
            continue
        headers = json.dumps(request.all_headers())
        assert token not in headers and token not in request.url, request.url
        assert token not in (request.post_data_buffer or b"").decode("latin-1")
    to_service = [r for r in traffic.sent if r.url.startswith(service_origin)]
    assert to_service, "the browser called the service itself"
    for request in to_service:
        headers = request.all_headers()
        assert lab.token not in json.dumps(headers), "Jupyter's token never goes to the service"
        assert "x-xsrftoken" not in headers and "cookie" not in headers
    hunt(canary, traffic, lab, notebook, page=page)
    assert_no_canary(token, dom_text(page), lab.log(), *(p for _, p in traffic.frames),
                     where="the page, the Jupyter server's log or a websocket frame")
    for path, text in files_text(tmp_path / "lab"):
        assert_no_canary(canary, text, where=f"the Jupyter server's file {path}")
        assert_no_canary(token, text, where=f"the Jupyter server's file {path}")
    assert_no_canary(canary, service.log(), where="the service's log")
