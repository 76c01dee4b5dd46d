"""``destinations_from_browsers = False``: where a value may go changes only without a
browser (the CLI, scripts), because a JupyterLab page also runs JavaScript from kernel
outputs, with the admin's login. Browsers still add, replace and delete values, edit what
is not a destination, and narrow hosts. A browser is told by the ``Origin`` header that it
adds to every write and that no page script can remove."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Api


@pytest.fixture
def strict(secrets_config: dict[str, Any]) -> None:
    secrets_config["destinations_from_browsers"] = False


@pytest.fixture
def browser(jp_http_port: int) -> dict[str, str]:
    return {"Origin": f"http://localhost:{jp_http_port}"}


CONNECTION = {"name": "llm", "base_url": "https://api.example.com/v1", "secret": "KEY",
              "auth": {"scheme": "bearer"}}


async def test_by_default_browsers_change_destinations(
    jp_serverapp: Any, api: Api, browser: dict[str, str]
) -> None:
    status, _ = await api("POST", "secrets", body={
        "name": "KEY", "value": "v-123456789", "allowed_hosts": ["api.example.com"]},
        headers=browser)
    assert status == 201
    assert (await api("POST", "connections", body=CONNECTION, headers=browser))[0] == 201


@pytest.mark.usefixtures("strict")
async def test_a_browser_cannot_widen_hosts_or_placements(
    jp_serverapp: Any, api: Api, browser: dict[str, str], canary: str
) -> None:
    status, body = await api("POST", "secrets", body={
        "name": "KEY", "value": canary, "allowed_hosts": ["evil.example"]}, headers=browser)
    assert status == 403 and "jupyter secrets CLI" in body["message"]
    assert (await api("GET", "secrets", "KEY"))[0] == 404, "nothing written"

    # Without a host it is no destination: the browser adds it; the CLI's path sets hosts.
    assert (await api("POST", "secrets", body={"name": "KEY", "value": canary},
                      headers=browser))[0] == 201
    assert (await api("PATCH", "secrets", "KEY", body={
        "allowed_hosts": ["api.example.com", "other.example"]}))[0] == 200
    for change in ({"allowed_hosts": ["api.example.com", "evil.example"]},
                   {"placements": ["header", "body"]}):
        status, body = await api("PATCH", "secrets", "KEY", body=change, headers=browser)
        assert status == 403, change
        assert "adding an allowed host or a placement" in body["message"]
    _, record = await api("GET", "secrets", "KEY")
    assert record["allowed_hosts"] == ["api.example.com", "other.example"]
    assert record["placements"] == ["header"]

    # Narrowing, other metadata, a new value: all fine from the browser.
    status, record = await api("PATCH", "secrets", "KEY", headers=browser, body={
        "allowed_hosts": ["api.example.com"], "description": "narrowed"})
    assert status == 200 and record["allowed_hosts"] == ["api.example.com"]
    assert (await api("PUT", "secrets", "KEY", body={"value": canary + "-2"},
                      headers=browser))[0] == 200


@pytest.mark.usefixtures("strict")
async def test_a_browser_cannot_create_or_repoint_connections(
    jp_serverapp: Any, api: Api, browser: dict[str, str]
) -> None:
    assert (await api("POST", "secrets", body={"name": "KEY", "value": "v-123456789"}))[0] == 201
    status, body = await api("POST", "connections", body=CONNECTION, headers=browser)
    assert status == 403 and "creating a connection" in body["message"]
    assert (await api("GET", "connections", "llm"))[0] == 404
    assert (await api("POST", "connections", body=CONNECTION))[0] == 201, "the CLI's way"

    _, current = await api("GET", "connections", "llm")
    for change in ({"base_url": "https://evil.example/v1"},
                   {"auth": {"scheme": "query", "param": "key"}},
                   {"headers": {"X-Key": "{{secrets.KEY}}"}}):
        status, body = await api("PATCH", "connections", "llm", body=change, headers=browser)
        assert status == 403 and "URL, auth, headers or secret" in body["message"], change
    _, after = await api("GET", "connections", "llm")
    assert after == current, "nothing changed"

    # The sidebar's Edit sends every field back: unchanged destinations pass.
    status, saved = await api("PATCH", "connections", "llm", headers=browser, body={
        "base_url": current["base_url"], "auth": current["auth"],
        "headers": current["headers"], "description": "team LLM", "rate_limit": 60})
    assert status == 200 and (saved["description"], saved["rate_limit"]) == ("team LLM", 60)
    assert (await api("DELETE", "connections", "llm", headers=browser))[0] == 204
