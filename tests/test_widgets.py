"""The admin panel against the real REST API (pytest-jupyter server), no kernel, no browser.

The front-end's part of the value protocol is played by the test: it sends the value with
``jp_fetch`` (as the browser would, with its own credentials) and answers the widget with
the ``saved`` message. Every widget's state is searched for the canary afterwards.

The panel's client is synchronous and the server runs on this test's event loop, so every
panel call that reaches the server runs in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from ipywidgets import Button, GridBox, Label
from ipywidgets.widgets import widget as widget_module

from jupyter_secrets.widgets import SecretsAPI, SecretsPanel, SecretValueInput
from jupyter_secrets.widgets._api import APIError, api_root
from jupyter_secrets.widgets._forms import delete_form

from .helpers import ADMIN, USER, assert_no_canary


@pytest.fixture
def server_url(jp_serverapp: Any, http_server_client: Any, jp_http_port: int,
               jp_base_url: str) -> str:
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}"


@pytest.fixture
def make_panel(server_url: str, jp_auth_header: dict[str, str]) -> Callable[..., Any]:
    async def make(headers: dict[str, str] | None = None) -> SecretsPanel:
        api = SecretsAPI(server_url, headers or jp_auth_header)
        return await asyncio.to_thread(SecretsPanel, api, fallback_after=None)

    return make


def all_widget_states() -> str:
    """The synced state of every live widget, as the front-end (and a saved notebook) sees it."""
    return json.dumps([w.get_state() for w in list(widget_module._instances.values())],
                      default=str)


def table_names(panel: SecretsPanel) -> list[str]:
    grid = panel.table_area.children[0]
    if not isinstance(grid, GridBox):
        return []
    columns = 9 if panel.can_write else 8
    return [cell.value for cell in grid.children[columns::columns]]


def capture_sends(entry: SecretValueInput) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    entry.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    return sent


async def reply(panel: SecretsPanel, content: dict[str, Any]) -> None:
    """Deliver a front-end message to the value entry, as ipykernel would."""
    await asyncio.to_thread(panel.value.secure._handle_custom_msg, content, [])


async def test_value_entry_has_no_value_trait() -> None:
    entry = SecretValueInput()
    assert "value" not in entry.keys
    assert set(entry.get_state()) >= {"_model_module", "frontend", "placeholder"}
    assert entry.get_state()["_model_module"] == "jupyter-secrets"


async def test_add_through_the_frontend_protocol(make_panel, api, canary, responses) -> None:
    panel = await make_panel()
    assert panel.can_write and table_names(panel) == []
    sent = capture_sends(panel.value.secure)
    form = panel.show_add()
    form.inputs["Name"].value = "openai key"
    form.inputs["Description"].value = "Team OpenAI key"
    form.inputs["Allowed hosts"].value = "api.openai.com, *.example.com"
    form.save.click()
    assert sent[0] == {"action": "clear"}  # opening a form forgets anything typed before
    sent = sent[1:]
    assert sent == [{"action": "submit", "method": "POST", "name": "openai key",
                     "fields": {"description": "Team OpenAI key",
                                "allowed_hosts": ["api.openai.com", "*.example.com"]}}]
    assert form.save.disabled

    # The browser's half: it adds the value it holds and posts to the server itself.
    status, record = await api("POST", "secrets", body={**sent[0]["fields"],
                                                         "name": sent[0]["name"], "value": canary})
    assert status == 201
    await reply(panel, {"event": "saved", "name": record["name"], "version": record["version"]})

    assert panel.form is None
    assert "Added OPENAI_KEY (version 1)" in panel.status.value
    assert table_names(panel) == ["OPENAI_KEY"]
    assert_no_canary(canary, all_widget_states(), json.dumps(sent), where="widget state")


async def test_replace_then_server_error_is_inline(make_panel, api, canary) -> None:
    await api("POST", "secrets", body={"name": "TOKEN", "value": "first"})
    panel = await make_panel()
    sent = capture_sends(panel.value.secure)
    form = panel.show_replace(panel.records[0])
    form.save.click()
    assert sent[-1] == {"action": "submit", "method": "PUT", "name": "TOKEN", "fields": {}}
    status, record = await api("PUT", "secrets", "TOKEN", body={"value": canary})
    assert status == 200 and record["version"] == 2
    await reply(panel, {"event": "saved", "name": "TOKEN", "version": 2})
    assert "Replaced the value of TOKEN (version 2)" in panel.status.value
    assert panel.records[0]["version"] == 2

    form = panel.show_replace(panel.records[0])
    form.save.click()
    await reply(panel, {"event": "error", "status": 413, "message": "The value is too large."})
    assert "The value is too large." in form.error.value
    assert not form.save.disabled and panel.form is form
    assert_no_canary(canary, all_widget_states(), where="widget state")


async def test_enter_in_the_value_field_saves(make_panel) -> None:
    panel = await make_panel()
    sent = capture_sends(panel.value.secure)
    panel.show_add().inputs["Name"].value = "X"
    await reply(panel, {"event": "submit-requested"})
    assert sent and sent[-1]["action"] == "submit"


async def test_fallback_clears_the_password_and_says_so(make_panel, api, canary) -> None:
    panel = await make_panel()
    panel.value.use_fallback()
    assert "pass through the kernel" in panel.value.note.value
    form = panel.show_add()
    form.inputs["Name"].value = "GITHUB_TOKEN"
    panel.value.fallback.value = canary
    await asyncio.to_thread(form.save.click)
    assert panel.value.fallback.value == ""
    assert "passed through the kernel" in panel.status.value
    _, record = await api("GET", "secrets", "GITHUB_TOKEN")
    assert record["version"] == 1
    assert_no_canary(canary, all_widget_states(), where="widget state")

    # A refused value is cleared too, and the server's words are shown.
    form = panel.show_add()
    form.inputs["Name"].value = "GITHUB_TOKEN"
    panel.value.fallback.value = canary
    await asyncio.to_thread(form.save.click)
    assert "already exists" in form.error.value
    assert panel.value.fallback.value == ""


async def test_edit_metadata_and_bad_input(make_panel, api) -> None:
    await api("POST", "secrets", body={"name": "SLACK", "value": "v"})
    panel = await make_panel()
    form = panel.show_edit(panel.records[0])
    form.inputs["Description"].value = "Bot token"
    form.inputs["Allowed hosts"].value = "slack.com"
    await asyncio.to_thread(form.save.click)
    _, record = await api("GET", "secrets", "SLACK")
    assert record["description"] == "Bot token" and record["allowed_hosts"] == ["slack.com"]
    assert "Updated SLACK" in panel.status.value

    form = panel.show_edit(panel.records[0])
    form.inputs["Allowed hosts"].value = "http://not a host/"
    await asyncio.to_thread(form.save.click)
    assert form.error.value and panel.form is form


async def test_delete_with_confirmation(make_panel, api) -> None:
    await api("POST", "secrets", body={"name": "OLD", "value": "v"})
    panel = await make_panel()
    form = await asyncio.to_thread(panel.show_delete, panel.records[0])
    assert "Nothing uses it" in form.children[1].value
    assert form.save.description == "Delete"
    await asyncio.to_thread(form.save.click)
    assert (await api("GET", "secrets", "OLD"))[0] == 404
    assert table_names(panel) == [] and "Deleted OLD" in panel.status.value


async def test_delete_names_the_connections_that_use_it(make_panel, api) -> None:
    await api("POST", "secrets", body={"name": "GH_TOKEN", "value": "v"})
    panel = await make_panel()  # drawn before the connection exists
    status, _ = await api("POST", "connections", body={
        "name": "github", "base_url": "https://api.github.com", "secret": "GH_TOKEN",
        "auth": {"scheme": "bearer"}})
    assert status == 201
    form = await asyncio.to_thread(panel.show_delete, panel.records[0])
    assert "It is used by github: it will stop working." in form.children[1].value
    await asyncio.to_thread(form.save.click)  # confirmed, so the panel forces the delete
    assert (await api("GET", "secrets", "GH_TOKEN"))[0] == 404, form.error.value


def test_delete_confirmation_names_what_uses_it() -> None:
    form = delete_form({"name": "GH", "used_by": ["connection github", "connection <ci>"]})
    text = form.children[1].value
    assert "connection github" in text and "connection &lt;ci&gt;" in text
    assert "will stop working" in text


@pytest.fixture
def two_admins(multi_user: None, secrets_config: dict[str, Any]) -> None:
    secrets_config["admin_users"] = {"alice", "bob"}


async def test_sort_and_filter_mine(two_admins, make_panel, api) -> None:
    await api("POST", "secrets", body={"name": "ZED", "value": "v"}, headers=ADMIN)
    await api("POST", "secrets", body={"name": "ALPHA", "value": "v"}, headers=ADMIN)
    await api("POST", "secrets", body={"name": "BOBS", "value": "v"}, headers=USER)
    await api("PATCH", "secrets", "ZED", body={"description": "touched"}, headers=ADMIN)
    panel = await make_panel(ADMIN)
    assert table_names(panel) == ["ALPHA", "BOBS", "ZED"]
    panel.sort.value = "updated"
    assert table_names(panel) == ["ZED", "BOBS", "ALPHA"]
    await asyncio.to_thread(setattr, panel.owner, "value", "me")
    assert table_names(panel) == ["ZED", "ALPHA"]


async def test_non_admins_get_a_read_only_table(multi_user, make_panel, api) -> None:
    await api("POST", "secrets", body={"name": "ALPHA", "value": "v"}, headers=ADMIN)
    bob = await make_panel(USER)
    assert not bob.can_write
    assert bob.add_button.layout.display == "none"
    assert table_names(bob) == ["ALPHA"]
    grid = bob.table_area.children[0]
    assert not any(isinstance(w, Button) for w in grid.children)
    assert all(isinstance(w, Label) for w in grid.children[8:])
    assert "read-only" in bob.who.value
    await asyncio.to_thread(setattr, bob.owner, "value", "me")
    assert "You own no secrets" in bob.table_area.children[0].value


async def test_refresh_errors_show_in_the_status_line(server_url) -> None:
    panel = await asyncio.to_thread(
        SecretsPanel, SecretsAPI(server_url, {"Authorization": "token wrong"}),
        fallback_after=None)
    assert "color" in panel.status.value and panel.records == []


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
