"""Connections: admin-defined ways to call a service, and what uses which secret."""

from __future__ import annotations

import pytest

from .helpers import ADMIN, USER, assert_no_canary


async def test_preset_fills_in_what_is_left_out_and_creates_a_system_secret(api, canary):
    status, conn = await api("POST", "connections", body={
        "name": "openai", "preset": "openai", "value": canary,
        "headers": {"OpenAI-Beta": "assistants=v2"},
    })
    assert status == 201, conn
    assert conn["base_url"] == "https://api.openai.com/v1"
    assert conn["auth"] == {"scheme": "bearer"}
    assert conn["secret"] == "OPENAI_CONNECTION_KEY" and conn["owns_secret"] is True
    _, hidden = await api("GET", "secrets")
    assert hidden["secrets"] == [], "system secrets stay out of the default listing"
    _, system = await api("GET", "secrets", params={"kind": "system"})
    (secret,) = system["secrets"]
    assert secret["name"] == "OPENAI_CONNECTION_KEY" and secret["used_by"] == ["openai"]

    assert (await api("DELETE", "connections", "openai"))[0] == 204
    _, system = await api("GET", "secrets", params={"kind": "system"})
    assert system["secrets"] == [], "the connection's own secret goes with it"


async def test_anthropic_preset(api, canary):
    _, conn = await api("POST", "connections", body={
        "name": "anthropic", "preset": "anthropic", "value": canary})
    assert conn["base_url"] == "https://api.anthropic.com"
    assert conn["auth"] == {"scheme": "header", "header": "x-api-key"}
    assert conn["headers"] == {"anthropic-version": "2023-06-01"}


async def test_secrets_record_what_uses_them_and_refuse_deletion(api, canary):
    await api("POST", "secrets", body={"name": "GH_TOKEN", "value": canary})
    await api("POST", "secrets", body={"name": "GH_ORG", "value": "org"})
    status, _ = await api("POST", "connections", body={
        "name": "github", "base_url": "https://api.github.com", "secret": "GH_TOKEN",
        "auth": {"scheme": "bearer"}, "headers": {"X-Org": "{{secrets.GH_ORG}}"}})
    assert status == 201
    _, listing = await api("GET", "secrets")
    assert {s["name"]: s["used_by"] for s in listing["secrets"]} == {
        "GH_ORG": ["github"], "GH_TOKEN": ["github"]}

    status, body = await api("DELETE", "secrets", "GH_TOKEN")
    assert status == 409 and "github" in body["message"]
    status, _ = await api("PUT", "secrets", body={"secrets": [{"key": "GH_ORG", "value": None}]})
    assert status == 409
    assert (await api("DELETE", "secrets", "GH_TOKEN", params={"force": "true"}))[0] == 204


@pytest.mark.parametrize(("body", "words"), [
    ({"name": "Bad Name!", "base_url": "https://x.example"}, "connection name"),
    ({"name": "x", "base_url": "ftp://x.example", "auth": {"scheme": "none"}}, "http(s)"),
    ({"name": "x", "base_url": "https://u:p@x.example", "auth": {"scheme": "none"}}, "user"),
    ({"name": "x", "base_url": "https://x.example", "auth": {"scheme": "magic"}}, "scheme"),
    ({"name": "x", "base_url": "https://x.example", "auth": {"scheme": "header"}}, "header"),
    ({"name": "x", "base_url": "https://x.example"}, "needs a secret"),
    ({"name": "x", "base_url": "https://x.example", "secret": "NOPE"}, "does not exist"),
    ({"name": "x", "preset": "nope"}, "preset"),
    ({"name": "x", "preset": "openai", "value": ""}, "empty"),
    ({"name": "x", "preset": "openai", "value": "v", "headers": {"Host": "h"}}, "managed"),
    ({"name": "x", "preset": "openai", "value": "v", "headers": {"X": "a\r\nb"}}, "single-line"),
    ({"name": "x", "preset": "openai", "value": "v", "colour": 1}, "colour"),
])
async def test_bad_connections_are_refused_and_nothing_is_created(api, body, words):
    status, reply = await api("POST", "connections", body=body)
    assert 400 <= status < 500
    assert words in reply["message"]
    _, listing = await api("GET", "connections")
    assert listing["connections"] == []
    _, system = await api("GET", "secrets", params={"kind": "all"})
    assert system["secrets"] == []


async def test_duplicate_connection_is_409(api, canary):
    body = {"name": "openai", "preset": "openai", "value": canary}
    assert (await api("POST", "connections", body=body))[0] == 201
    assert (await api("POST", "connections", body=body))[0] == 409


async def test_update_and_replace_the_owned_key(api, canary, responses):
    await api("POST", "connections", body={"name": "openai", "preset": "openai", "value": canary})
    status, conn = await api("PATCH", "connections", "openai",
                             body={"base_url": "https://eu.api.openai.com/v1", "value": "v2"})
    assert status == 200 and conn["base_url"] == "https://eu.api.openai.com/v1"
    _, secret = await api("GET", "secrets", "OPENAI_CONNECTION_KEY")
    assert secret["version"] == 2
    assert (await api("PATCH", "connections", "nope", body={"description": "x"}))[0] == 404
    assert_no_canary(canary, *responses)


@pytest.mark.usefixtures("multi_user")
async def test_only_admins_manage_connections(api, canary):
    body = {"name": "openai", "preset": "openai", "value": canary}
    assert (await api("POST", "connections", body=body, headers=USER))[0] == 403
    assert (await api("POST", "connections", body=body, headers=ADMIN))[0] == 201
    assert (await api("GET", "connections", headers=USER))[0] == 200
    assert (await api("DELETE", "connections", "openai", headers=USER))[0] == 403
