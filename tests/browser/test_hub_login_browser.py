"""The sidebar's Hub login, in a real JupyterHub (``hub_lab.py``): alice's JupyterLab in
client mode talks to the secrets service on the Hub's origin with the Hub's OAuth cookie.

- Opening the sidebar (a click) asks the service who she is; it has no session yet, so the
  service's login page opens in a small window, the Hub signs her in there, the page says so
  and closes, and the sidebar goes on.
- The session lost in the middle of a write: Save is answered 403, the login window opens
  from that click, and the same write goes again with the form, what was typed and the
  filters as they were (and the fresh XSRF token).
- Without a user's click (a reload started by code) no window opens by itself: the Sign in
  button does it.

Nothing of the Jupyter server's login goes to the service, and the value typed goes only to
the service.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..helpers import assert_no_canary
from .conftest import CHROMIUM, CHROMIUM_ARGS, Traffic, watch
from .hub_lab import LeanHub, start_lean_hub
from .pages import MANAGER, dom_text, row, stored_value, wait_for_status

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SIDEBAR = f".jp-secrets-sidebar {MANAGER}"
KEY_ICON = '.jp-SideBar [data-id="jp-secrets-sidebar"]'


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[LeanHub]:
    with start_lean_hub(tmp_path / "hub") as hub:
        yield hub


@pytest.fixture
def browser(hub: LeanHub) -> Iterator[tuple[Any, Any, Traffic]]:
    from playwright.sync_api import sync_playwright

    traffic = Traffic()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = watch(chromium.new_context(viewport={"width": 1400, "height": 1000}),
                        traffic)  # the login windows too
        page = context.new_page()
        try:
            yield context, page, traffic
        finally:
            context.close()
            chromium.close()


def at_service(hub: LeanHub, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{hub.service_api}/{path}", headers=hub.service_admin,
                         timeout=30, trust_env=False, **kwargs)


def sent_headers(request: Any) -> dict[str, str]:
    """Every header a request carried (a closed login window's: those Playwright kept)."""
    from playwright.sync_api import Error

    try:
        return dict(request.all_headers())
    except Error:
        return dict(request.headers)


def lose_the_service_session(context: Any) -> None:
    """What an expired service cookie looks like: the Hub login stays, the service's goes."""
    context.clear_cookies(path="/services/secrets/")


def test_hub_login_popup_keeps_the_panel_state(
    hub: LeanHub, browser: tuple[Any, Any, Traffic], artifacts: Path, canary: str
) -> None:
    context, page, traffic = browser
    # alice logs in at the Hub; her server starts in client mode.
    page.goto(f"{hub.url}hub/login?next=/hub/spawn")  # then her server starts and opens
    page.locator("#username_input").fill("alice")
    page.locator("#password_input").fill(hub.password)
    page.locator("#login_submit").click()
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=120_000)
    page.evaluate("async () => { await window.jupyterapp.started; "
                  "await window.jupyterapp.restored; }")
    info = page.evaluate("""async () => {
        const xsrf = document.cookie.match(/(?:^|; )_xsrf=([^;]*)/)[1];
        const r = await fetch('/user/alice/api/secrets/v1/info', {headers: {'X-XSRFToken': xsrf}});
        return r.json();
    }""")
    assert info.get("mode") == "client" and info["api_url"] == hub.service_api, info

    # The first use: the login window opens from the click, signs in and closes.
    with context.expect_page() as opened:
        page.locator(KEY_ICON).click()
    opened.value.wait_for_event("close", timeout=60_000)
    login = [u for _, u, _ in traffic.requests if u.startswith(f"{hub.service_url}login")]
    assert login, "the window opened the service's login page"
    sidebar = page.locator(SIDEBAR)
    sidebar.locator(".jp-secrets-tab-button").first.wait_for(timeout=60_000)
    assert sidebar.locator(".jp-secrets-who").inner_text() == "alice · admin"
    assert sidebar.locator(".jp-secrets-signin").is_hidden()
    assert hub.service_url in sidebar.locator(".jp-secrets-where").inner_text()
    assert sidebar.get_by_role("button", name="Forget the admin token in this browser tab") \
        .count() == 0, "a Hub login has no token to forget"

    # An admin shares with Hub groups; a write carries the service's XSRF token.
    sidebar.get_by_role("button", name="Add secret").click()
    sidebar.get_by_label("Name", exact=True).fill("team key")
    sidebar.get_by_label("Value", exact=True).press_sequentially(f"{canary}-1")
    sidebar.get_by_label("users and groups", exact=True).check()
    sidebar.get_by_label("Groups", exact=True).fill("analysts")
    sidebar.get_by_role("button", name="Save").click()
    wait_for_status(sidebar, "Added TEAM_KEY (version 1).")
    record = at_service(hub, "GET", "secrets/TEAM_KEY").json()
    assert record["owner"] == "alice" and record["shared_with"] == {
        "users": [], "groups": ["analysts"]}

    # The session goes while a form is open: Save opens the login window from its click and
    # the same write goes again, with everything on the page as it was.
    sidebar.get_by_label("Search").fill("key")
    sidebar.get_by_role("button", name="Add secret").click()
    add = sidebar.locator(".jp-secrets-add-slot form")
    add.get_by_label("Name", exact=True).fill("late key")
    add.get_by_label("Description").fill("typed before the session went")
    add.get_by_label("Value", exact=True).press_sequentially(f"{canary}-2")
    lose_the_service_session(context)
    with context.expect_page() as opened:
        add.get_by_role("button", name="Save").click()
    opened.value.wait_for_event("close", timeout=60_000)
    wait_for_status(sidebar, "Added LATE_KEY (version 1).")
    late = at_service(hub, "GET", "secrets/LATE_KEY").json()
    assert late["description"] == "typed before the session went"
    assert sidebar.get_by_label("Search").input_value() == "key", "the filter is intact"

    # Without a click (a reload started by code, long after the last click: browsers let a
    # page open a window only for 5 s after one) nothing opens by itself: Sign in does it.
    lose_the_service_session(context)
    page.evaluate("setTimeout(() => document.querySelector('.jp-secrets-sidebar "
                  "[aria-label=\"Reload the secrets list\"]').click(), 6500)")
    prompt = sidebar.locator(".jp-secrets-signin")
    prompt.get_by_role("button", name="Sign in to the secrets service").wait_for(timeout=30_000)
    assert len(context.pages) == 1, "no window opened without a click"
    page.screenshot(path=str(artifacts / "hub-sign-in.png"))
    with context.expect_page() as opened:
        prompt.get_by_role("button", name="Sign in to the secrets service").click()
    opened.value.wait_for_event("close", timeout=60_000)
    prompt.wait_for(state="hidden", timeout=30_000)
    row(sidebar, "LATE_KEY").wait_for()
    page.screenshot(path=str(artifacts / "hub-signed-in.png"))

    # The values went only to the service, and nothing of Jupyter's login did.
    service_prefix = hub.service_url.rstrip("/")
    carriers = [(m, u.split("?")[0]) for m, u, body in traffic.requests if canary in body]
    # Each value once, or twice for the write the lost session refused (403) and the retry
    # after the login: always the same write to the service, never anywhere else.
    assert set(carriers) == {("POST", f"{hub.service_api}/secrets")}, carriers
    for value in (f"{canary}-1", f"{canary}-2"):
        assert sum(value in body for _, _, body in traffic.requests) <= 2, value
    # What the page typed is what the service holds (Playwright does not always hand over
    # the body of a request sent while a login window opens, so the store says it too).
    assert stored_value(hub, "TEAM_KEY") == (1, f"{canary}-1")
    assert stored_value(hub, "LATE_KEY") == (1, f"{canary}-2")
    jupyter_cookies = [c for c in context.cookies() if c["path"].startswith("/user/alice")]
    jupyter_xsrf = [c["value"] for c in jupyter_cookies if c["name"] == "_xsrf"]
    to_service = [r for r in traffic.sent if r.url.startswith(service_prefix)]
    writes = [r for r in to_service if r.method not in ("GET", "HEAD")]
    assert writes, "the browser wrote to the service itself"
    for request in to_service:
        headers = sent_headers(request)
        assert "authorization" not in headers, "no token: the Hub's cookie is the login"
        for cookie in jupyter_cookies:
            assert cookie["value"] not in json.dumps(headers), cookie["name"]
        if "x-xsrftoken" in headers:
            assert headers["x-xsrftoken"] not in jupyter_xsrf, "the service's own XSRF token"
        elif request.method not in ("GET", "HEAD"):
            raise AssertionError(f"{request.method} {request.url} without the XSRF token")
    assert_no_canary(canary, *(p for _, p in traffic.frames), where="websocket frame")
    assert_no_canary(canary, *(body for _, body in traffic.responses), where="response body")
    assert_no_canary(canary, dom_text(page), where="DOM")
    assert_no_canary(canary, hub.log(), where="the Hub's, the service's or alice's server's log")
    for path in hub.home("alice").rglob("*"):
        if path.is_file():
            assert_no_canary(canary, path.read_bytes(), where=f"alice's file {path}")
