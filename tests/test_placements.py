"""Where a value may be placed in a request is the secret's policy, set by a person.

A placeholder in a body, query string or path can come back transformed by an echoing host
(an LLM asked to spell it, form decoding, a paste API), beyond what any scrubber recognises.
So values go into headers only, unless a person allows more; anything else is a 403 naming
the secret and the setting, before a byte leaves.
"""

from __future__ import annotations

import asyncio
import http.client
import sqlite3
from urllib.parse import urlsplit

import pytest

from jupyter_secrets.store import open_store
from jupyter_secrets.store.migrations import SQLITE_MIGRATIONS

from .helpers import assert_no_canary
from .helpers import http as http_call

TOKEN = "{{secrets.EXAMPLE_TOKEN}}"


def _calls(url: str) -> dict[str, dict[str, object]]:
    """One ad-hoc request per placement, each putting the placeholder only there."""
    return {
        "query": {"url": f"{url}/echo/q?k={TOKEN}"},
        "params": {"url": f"{url}/echo/q", "params": {"k": TOKEN}},
        "path": {"url": f"{url}/echo/{TOKEN}"},
        "body": {"method": "POST", "url": f"{url}/echo/b", "body": f"key={TOKEN}"},
        "json": {"method": "POST", "url": f"{url}/echo/j", "json": {"prompt": f"spell {TOKEN}"}},
    }


async def test_new_secrets_go_into_headers_only(api, example_token, upstream, canary):
    _, record = await api("GET", "secrets", "EXAMPLE_TOKEN")
    assert record["placements"] == ["header"]
    status, _ = await api("POST", "request", body={
        "url": f"{upstream.url}/echo/h", "headers": {"Authorization": f"Bearer {TOKEN}"}})
    assert status == 200
    assert upstream.requests[-1].headers["Authorization"] == f"Bearer {canary}"


@pytest.mark.parametrize("where", ["query", "params", "path", "body", "json"])
async def test_other_placements_are_refused_before_any_byte_leaves(
    api, example_token, upstream, where, responses, canary
):
    status, body = await api("POST", "request", body=_calls(upstream.url)[where])
    assert status == 403
    assert "EXAMPLE_TOKEN" in body["message"] and "placements" in body["message"]
    assert upstream.requests == []
    assert_no_canary(canary, *responses)


async def test_a_person_can_allow_more_placements(api, example_token, upstream, canary):
    status, record = await api("PATCH", "secrets", "EXAMPLE_TOKEN",
                               body={"placements": ["body", "header"]})
    assert status == 200 and record["placements"] == ["header", "body"]
    calls = _calls(upstream.url)
    assert (await api("POST", "request", body=calls["json"]))[0] == 200
    assert upstream.requests[-1].json() == {"prompt": f"spell {canary}"}
    assert (await api("POST", "request", body=calls["query"]))[0] == 403, "still not query"


@pytest.mark.parametrize(("placements", "words"), [
    ("header", "must be a list"),
    ([], "may not be empty"),
    (["headers"], "'headers'"),
    ([1], "Unknown placement"),
])
async def test_bad_placements_are_refused_and_change_nothing(
    api, example_token, placements, words
):
    status, body = await api("PATCH", "secrets", "EXAMPLE_TOKEN",
                             body={"placements": placements})
    assert status == 422 and words in body["message"]
    status, body = await api("POST", "secrets", body={"name": "NEW", "value": "v12345678",
                                                      "placements": placements})
    assert status == 422
    assert (await api("GET", "secrets", "NEW"))[0] == 404
    assert (await api("GET", "secrets", "EXAMPLE_TOKEN"))[1]["placements"] == ["header"]


async def test_a_connection_s_own_auth_scheme_counts_as_its_placement(
    runtime, upstream, server_url, auth, canary
):
    """``{"scheme": "query"}`` puts the key in the query string: the admin chose that."""
    runtime.connections.create("admin", {
        "name": "maps", "base_url": upstream.url, "value": canary,
        "auth": {"scheme": "query", "param": "key"}, "headers": {"X-Trace": "on"}})
    r = await http_call("GET", f"{server_url}/proxy/maps/echo/x", headers=auth)
    assert r.status_code == 200, r.text
    assert f"key={canary}" in upstream.requests[-1].query
    assert canary not in r.text


async def test_the_proxy_path_and_query_follow_the_secret_s_placements(
    up_connection, example_token, upstream, server_url, auth, canary
):
    """A caller cannot move another secret into the URL through a connection's proxy.

    Raw braces (as curl --globoff sends them) are placeholders; URL-encoded ones are text.
    """
    for target in (f"/proxy/up/echo/x?k={TOKEN}", f"/proxy/up/echo/{TOKEN}"):
        status, body = await asyncio.to_thread(_raw_get, server_url, target, auth)
        assert status == 403 and "placements" in body, body
    r = await http_call("GET", f"{server_url}/proxy/up/echo/x", params={"k": TOKEN}, headers=auth)
    assert r.status_code == 200 and "%7B%7Bsecrets.EXAMPLE_TOKEN%7D%7D" in r.json()["query"]
    assert all(canary not in req.path + req.query for req in upstream.requests)


def _raw_get(server_url: str, target: str, headers: dict[str, str]) -> tuple[int, str]:
    """A request line sent exactly as written (httpx would percent-encode the braces)."""
    parts = urlsplit(server_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", parts.path + target, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


async def test_a_redirect_location_is_never_filled_in(
    api, example_token_everywhere, upstream, canary
):
    """An upstream's Location holding a placeholder is followed as written, not filled."""
    status, _ = await api("POST", "request", body={
        "url": f"{upstream.url}/redirect",
        "params": {"to": f"{upstream.url}/echo/next", "placeholder": "EXAMPLE_TOKEN"},
        "headers": {"Authorization": f"Bearer {TOKEN}"}})
    assert status == 200
    last = upstream.requests[-1]
    assert last.path == "/echo/next" and canary not in last.query


def test_existing_stores_migrate_to_headers_plus_what_connections_need(tmp_path):
    """A version-3 store: its query-auth connection keeps working, other secrets go header."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # a store as release 3 of the schema left it
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, script in SQLITE_MIGRATIONS[:3]:
            for statement in script:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?)", (version,))
        for name in ("MAPS_KEY", "OTHER"):
            conn.execute(
                "INSERT INTO secrets (id, name, kind, owner, created_at, updated_at, updated_by,"
                " version, key_id, wrapped_key, ciphertext) VALUES (?, ?, 'user', 'o', 't', 't',"
                " 'o', 1, 'k', x'00', x'00')", (name.lower(), name))
        conn.execute(
            "INSERT INTO connections (name, preset, base_url, secret, auth, headers,"
            " created_at, created_by, updated_at, updated_by) VALUES ('maps', 'http',"
            " 'https://maps.example', 'MAPS_KEY', '{\"scheme\": \"query\", \"param\": \"key\"}',"
            " '{}', 't', 'o', 't', 'o')")
    store = open_store(f"sqlite:///{path}")
    try:
        assert store.get_secret("MAPS_KEY").placements == ("header", "query")
        assert store.get_secret("OTHER").placements == ("header",)
    finally:
        store.close()
