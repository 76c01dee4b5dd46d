"""Secrets and connections shared with everyone (the default) or with users and groups.

alice is an admin in group finance; bob a user in group analysts (configured groups; under
JupyterHub the Hub's groups count too, tests/test_hub.py). Whoever a thing is not shared with
does not see it, and cannot use it; the audit log says what let each call through.
"""

from __future__ import annotations

import pytest

from .helpers import ADMIN, USER, assert_no_canary, http

pytestmark = pytest.mark.usefixtures("multi_user", "groups")


@pytest.fixture
def groups(secrets_config):
    secrets_config["groups"] = {"analysts": ["bob"], "finance": ["alice"]}


@pytest.fixture
def shared(groups, runtime, upstream, canary) -> str:
    host = f"127.0.0.1:{upstream.port}"
    for name, shared_with in (("OPEN", None), ("FINANCE", {"groups": ["finance"]}),
                              ("ANALYSTS", {"groups": ["analysts"]}),
                              ("BOB", {"users": ["bob"]})):
        runtime.secrets.create("alice", name, canary, allowed_hosts=[host],
                               shared_with=shared_with)
    return host


async def _call(api, headers, name, upstream):
    return await api("POST", "request", headers=headers, body={
        "url": f"{upstream.url}/echo/{name}", "headers": {"X-Key": f"{{{{secrets.{name}}}}}"}})


async def test_names_show_only_what_is_shared_with_the_caller(api, shared):
    _, bob = await api("GET", "secrets", headers=USER)
    _, alice = await api("GET", "secrets", headers=ADMIN)
    assert [s["name"] for s in bob["secrets"]] == ["ANALYSTS", "BOB", "OPEN"]
    assert [s["name"] for s in alice["secrets"]] == ["ANALYSTS", "BOB", "FINANCE", "OPEN"]
    assert {s["name"]: s["shared_with"] for s in alice["secrets"]}["OPEN"] == "everyone"
    status, body = await api("GET", "secrets", "FINANCE", headers=USER)
    missing = await api("GET", "secrets", "NO_SUCH", headers=USER)
    assert (status, body["message"]) == (404, "No secret named FINANCE.")
    assert missing[0] == 404, "a hidden secret looks exactly like a missing one"


async def test_the_proxy_enforces_sharing_per_call_and_audits_the_grant(
    api, shared, upstream, canary, responses
):
    for name, expected in (("OPEN", 200), ("ANALYSTS", 200), ("BOB", 200), ("FINANCE", 422)):
        status, body = await _call(api, USER, name, upstream)
        assert status == expected, (name, body)
    assert "Unknown secret 'FINANCE'" in body["message"], "as if it did not exist"
    assert (await _call(api, ADMIN, "FINANCE", upstream))[0] == 200
    assert all(r.path != "/echo/FINANCE" or r.headers.get("X-Key") == canary
               for r in upstream.requests)
    _, log = await api("GET", "audit", headers=ADMIN, params={"user": "bob"})
    grants = {tuple(e["secrets"]): e["grant"] for e in log["events"]
              if e["action"] == "request_call"}
    assert grants == {("OPEN",): "everyone", ("ANALYSTS",): "group:analysts",
                      ("BOB",): "user:bob"}
    assert_no_canary(canary, *responses)


async def test_connections_are_shared_too(
    api, groups, runtime, upstream, server_url, canary
):
    runtime.connections.create("alice", {"name": "fin", "base_url": upstream.url,
                                         "value": canary, "shared_with": ["group:finance"]})
    runtime.secrets.create("alice", "RESTRICTED", canary, shared_with={"users": ["alice"]})
    runtime.connections.create("alice", {"name": "open", "base_url": upstream.url,
                                         "secret": "RESTRICTED"})
    _, listed = await api("GET", "connections", headers=USER)
    assert [c["name"] for c in listed["connections"]] == ["open"]
    assert (await api("GET", "connections", "fin", headers=USER))[0] == 404
    proxied = await http("GET", f"{server_url}/proxy/fin/echo/x", headers=USER)
    assert proxied.status_code == 404 and "No connection named fin" in proxied.text
    through = await http("GET", f"{server_url}/proxy/open/echo/x", headers=USER)
    assert through.status_code == 403 and "not shared with you" in through.text
    assert (await http("GET", f"{server_url}/proxy/fin/echo/x", headers=ADMIN)).status_code == 200
    assert not any(canary in r.headers.get("Authorization", "") for r in upstream.requests[:-1])


@pytest.mark.parametrize(("shared_with", "words"), [
    ([], "lists nobody"),
    ({"users": [""]}, "non-empty"),
    ({"people": ["bob"]}, "shared_with must be"),
    (["admin:bob"], "shared_with must be"),
    ("some", "shared_with must be"),
    ({"users": ["a,b"]}, "without commas"),
])
async def test_bad_sharing_is_refused_and_changes_nothing(api, shared, shared_with, words):
    status, body = await api("PATCH", "secrets", "OPEN", headers=ADMIN,
                             body={"shared_with": shared_with})
    assert status == 422 and words in body["message"], body
    assert (await api("GET", "secrets", "OPEN", headers=ADMIN))[1]["shared_with"] == "everyone"


async def test_sharing_changes_take_effect_at_once(api, shared, upstream):
    assert (await _call(api, USER, "FINANCE", upstream))[0] == 422
    status, record = await api("PATCH", "secrets", "FINANCE", headers=ADMIN,
                               body={"shared_with": ["group:finance", "user:bob"]})
    assert status == 200 and record["shared_with"] == {"users": ["bob"], "groups": ["finance"]}
    assert (await _call(api, USER, "FINANCE", upstream))[0] == 200
    await api("PATCH", "secrets", "FINANCE", headers=ADMIN, body={"shared_with": "everyone"})
    assert (await api("GET", "secrets", "FINANCE", headers=USER))[1]["shared_with"] == "everyone"
