"""The notebook panel's kernel side against the real REST API (pytest-jupyter), no browser.

The browser draws the panel (labextension) and makes every write itself; here the test
plays the front-end's part of the comm protocol: it says it can draw the panel, reports
changes by name, or stays silent so the kernel falls back to its read-only table. Widget
state is searched for the canary, and the number of live widgets is counted across refreshes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from ipywidgets.widgets import widget as widget_module

from jupyter_secrets.protocol import PANEL_MODEL, PANEL_VIEW, WIDGET_MODULE
from jupyter_secrets.widgets import SecretsAPI, SecretsPanel, SecretsPanelView
from jupyter_secrets.widgets._api import APIError, api_root
from jupyter_secrets.widgets._table import table_html

from .helpers import ADMIN, USER, assert_no_canary


@pytest.fixture
def server_url(jp_serverapp: Any, http_server_client: Any, jp_http_port: int,
               jp_base_url: str) -> str:
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}"


@pytest.fixture
def make_panel(server_url: str, jp_auth_header: dict[str, str]) -> Callable[..., Any]:
    async def make(headers: dict[str, str] | None = None, **kwargs: Any) -> SecretsPanel:
        api = SecretsAPI(server_url, headers or jp_auth_header)
        kwargs.setdefault("fallback_after", None)
        return await asyncio.to_thread(lambda: SecretsPanel(api, **kwargs))

    return make


def all_widget_states() -> str:
    """The synced state of every live widget, as the front-end (and a saved notebook) sees it."""
    return json.dumps([w.get_state() for w in list(widget_module._instances.values())],
                      default=str)


def live_widgets() -> int:
    return len(widget_module._instances)


def capture_sends(view: SecretsPanelView) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    view.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    return sent


async def from_frontend(panel: SecretsPanel, content: dict[str, Any]) -> None:
    """Deliver a front-end message to the panel's view, as ipykernel would."""
    await asyncio.to_thread(panel.view._handle_custom_msg, content, [])


async def test_the_view_has_no_value_trait() -> None:
    view = SecretsPanelView()
    state = view.get_state()
    assert "value" not in view.keys
    assert set(state) - set(SecretsPanelView().get_state()) == set()
    assert (state["_model_module"], state["_model_name"], state["_view_name"]) == (
        WIDGET_MODULE, PANEL_MODEL, PANEL_VIEW)
    assert {"tab", "frontend"} <= set(state)


async def test_the_browser_draws_the_panel_once_it_says_it_can(make_panel, api) -> None:
    await api("POST", "secrets", body={"name": "OPENAI_API_KEY", "value": "v"})
    panel = await make_panel(tab="connections")
    assert panel.mode == "waiting" and "Loading" in panel.waiting.value
    assert panel.view.tab == "connections"
    assert [r["name"] for r in panel.records] == ["OPENAI_API_KEY"] and panel.can_write
    panel.view.frontend = "jupyter-secrets 0.1.0"  # what the labextension's model sets
    assert panel.mode == "frontend" and panel.children == (panel.view,)
    with pytest.raises(ValueError, match="tab must be one of"):
        SecretsPanel(SecretsAPI("http://127.0.0.1:9"), tab="values")


async def test_without_the_extension_a_read_only_table_says_how_to_get_it(make_panel, api):
    for name in ("ALPHA", "BETA", "GAMMA"):
        await api("POST", "secrets", body={"name": name, "value": "v",
                                           "allowed_hosts": [f"{name.lower()}.example.com"]})
    loop = asyncio.get_running_loop()
    shown = asyncio.Event()
    panel = await make_panel(fallback_after=0.05, page_size=2)
    # The fallback timer fires in its own thread (the panel was built outside a loop).
    panel.observe(lambda _c: loop.call_soon_threadsafe(shown.set), names="children")
    if panel.mode != "read-only":
        await asyncio.wait_for(shown.wait(), timeout=10)
    assert panel.mode == "read-only"
    table = panel.fallback
    assert "pip install jupyter-secrets" in table.note.value and "Secrets" in table.note.value
    assert "ALPHA" in table.table.value and "BETA" in table.table.value
    assert "GAMMA" not in table.table.value and table.position.value == "1-2 of 3"
    assert table.previous.disabled and not table.next.disabled
    table.next.click()
    assert "GAMMA" in table.table.value and "ALPHA" not in table.table.value
    assert table.position.value == "3-3 of 3" and table.next.disabled
    table.search.value = "beta.example"
    assert "BETA" in table.table.value and "ALPHA" not in table.table.value
    table.search.value = "nothing-like-this"
    assert "No secret matches" in table.table.value
    # The browser turning up later (a reopened notebook) replaces the table with the panel.
    panel.view.frontend = "jupyter-secrets 0.1.0"
    assert panel.mode == "frontend"


async def test_refreshes_and_paging_create_no_widgets(make_panel, api, canary) -> None:
    for i in range(30):
        await api("POST", "secrets", body={"name": f"KEY_{i:02d}", "value": f"{canary}-{i}"})
    panel = await make_panel(page_size=10)
    panel.use_fallback()
    before = live_widgets()
    for _ in range(5):
        await asyncio.to_thread(panel.refresh)
        panel.fallback.next.click()
        panel.fallback.search.value = "KEY_1"
        panel.fallback.search.value = ""
    assert live_widgets() == before, "the panel reuses its widgets"
    assert len(panel.records) == 30
    assert_no_canary(canary, all_widget_states(), where="widget state")


async def test_the_browser_reports_changes_by_name_and_the_kernel_reloads(make_panel, api):
    panel = await make_panel()
    sent = capture_sends(panel.view)
    heard: list[dict[str, str]] = []
    panel.on_change(heard.append)
    assert panel.records == []
    # The browser created the secret itself (with the page's login), then says so.
    await api("POST", "secrets", body={"name": "NEW_KEY", "value": "typed-in-the-browser"})
    await from_frontend(panel, {"event": "changed", "kind": "secret", "name": "NEW_KEY",
                                "action": "create", "value": "smuggled"})
    assert [r["name"] for r in panel.records] == ["NEW_KEY"]
    assert heard == [{"kind": "secret", "name": "NEW_KEY", "action": "create"}], \
        "only the protocol's fields are kept"
    await from_frontend(panel, {"event": "something-else"})
    await from_frontend(panel, ["not", "a", "dict"])  # type: ignore[arg-type]
    assert len(heard) == 1
    await asyncio.to_thread(panel.refresh)
    assert sent == [{"action": "refresh"}], "refresh() asks every browser view to reload"


async def test_the_kernel_side_cannot_write() -> None:
    writes = {"create", "replace", "patch", "delete", "post", "put"}
    assert not writes & {n for n in dir(SecretsAPI) if not n.startswith("_")}
    assert not [n for n in dir(SecretsPanel) if n.startswith(("show_", "save", "_save"))]


async def test_non_admins_see_a_read_only_table(multi_user, make_panel, api) -> None:
    await api("POST", "secrets", body={"name": "ALPHA", "value": "v"}, headers=ADMIN)
    bob = await make_panel(USER)
    assert not bob.can_write and bob.me["role"] == "user"
    bob.use_fallback()
    assert "ALPHA" in bob.fallback.table.value


async def test_load_errors_show_in_the_panel(server_url) -> None:
    panel = await asyncio.to_thread(
        SecretsPanel, SecretsAPI(server_url, {"Authorization": "token wrong"}),
        fallback_after=None)
    assert panel.error and panel.records == []
    assert "color" in panel.fallback.status.value


def test_the_table_escapes_what_people_typed() -> None:
    html = table_html([{"name": "X", "kind": "user", "description": "<script>",
                        "allowed_hosts": ["a.example<b>"], "used_by": ['c"d'],
                        "last_used_at": "2025-01-31T14:05:00Z", "use_count": 1}])
    assert "<script>" not in html and "a.example&lt;b&gt;" in html and "c&quot;d" in html
    assert "(1 use)" in html and "header" in html


def test_api_root_and_env() -> None:
    assert api_root("http://h:1/base/") == "http://h:1/base/api/secrets/v1/"
    assert api_root("http://h:1/base/api/secrets/v1") == "http://h:1/base/api/secrets/v1/"
    with pytest.raises(Exception, match="JUPYTER_SECRETS_URL"):
        SecretsAPI.from_env({})
    api = SecretsAPI.from_env({"JUPYTER_SECRETS_URL": "http://h:1/",
                               "JUPYTER_SECRETS_TOKEN": "jsk_x"})
    assert "jsk_x" not in repr(api)
    assert api._client.headers["Authorization"] == "Bearer jsk_x"
    assert issubclass(APIError, Exception)
    with pytest.raises(APIError, match="Could not reach"):
        SecretsAPI("http://127.0.0.1:9", timeout=2).me()
