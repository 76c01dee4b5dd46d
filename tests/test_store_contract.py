"""The shared store suite: every backend in ``store.BACKENDS`` must pass all of it.

It speaks only the ``Store`` interface (rows and transactions), never a backend's SQL, so a
new backend proves itself here. The ``store_url`` fixture is parametrized over the backends.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace

import pytest

from jupyter_secrets.boundary.sharing import SharedWith
from jupyter_secrets.crypto import Sealed
from jupyter_secrets.errors import ConcurrentChange
from jupyter_secrets.store import AuditFilter, AuditRecord, ConnectionRecord, SecretRecord
from jupyter_secrets.store import open_store as _open_store
from jupyter_secrets.store.records import TokenRecord, now_iso


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/contract.db"
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")  # a fresh database of the test cluster
    raise AssertionError(request.param)  # pragma: no cover


@pytest.fixture
def store(store_url):
    opened = _open_store(store_url)
    yield opened
    opened.close()


def record(name: str, version: int = 1, **fields) -> SecretRecord:
    now = now_iso()
    return replace(SecretRecord(
        id=uuid.uuid4().hex, name=name, kind="user", description="", owner="o",
        created_at=now, updated_at=now, updated_by="o", version=version, allowed_hosts=(),
        key_id="k1",
    ), **fields)


def sealed(tag: bytes = b"x") -> Sealed:
    return Sealed("k1", b"wrapped-" + tag, b"cipher-" + tag)


def connection(name: str, secret: str | None = None) -> ConnectionRecord:
    return ConnectionRecord(name=name, preset="http", base_url="https://api.example.com",
                            secret=secret, auth={"scheme": "bearer"}, headers={},
                            created_at=now_iso(), created_by="o", updated_at=now_iso(),
                            updated_by="o")


def test_rows_round_trip_metadata_and_ciphertext(store):
    r = record("A", allowed_hosts=("api.example.com",), description="d")
    with store.transaction() as tx:
        tx.insert_secret(r, sealed(b"a"))
    got_record, got_sealed = store.get_sealed("A")
    assert got_sealed == sealed(b"a")
    assert got_record == r
    assert store.get_secret("A") == r
    assert store.get_secret("MISSING") is None
    assert [x.name for x in store.list_secrets()] == ["A"]
    assert store.key_ids_in_use() == {"k1"}


def test_a_batch_reads_its_rows_in_one_call(store):
    a, b = record("A", description="a"), record("B")
    with store.transaction() as tx:
        tx.insert_secret(a, sealed(b"a"))
        tx.insert_secret(b, sealed(b"b"))
    with store.transaction() as tx:
        rows = tx.get_secrets(["B", "MISSING", "A"])
        assert rows == {"A": (a, sealed(b"a")), "B": (b, sealed(b"b"))}, "absent names left out"
        assert tx.get_secrets([]) == {}
        tx.update_secret(replace(a, version=2), sealed(b"a2"), expected_version=1)
        assert tx.get_secrets(["A"])["A"][1] == sealed(b"a2"), "sees its own writes"


def test_a_transaction_that_raises_writes_nothing(store):
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.insert_secret(record("A"), sealed())
        tx.put_connection(connection("c", "A"))
        raise RuntimeError("boom")
    assert store.list_secrets() == []
    assert store.list_connections() == []


def test_update_checks_the_row_version(store):
    r = record("A")
    with store.transaction() as tx:
        tx.insert_secret(r, sealed())
    with store.transaction() as tx:
        tx.update_secret(replace(r, version=2), sealed(b"2"), expected_version=1)
    with pytest.raises(ConcurrentChange), store.transaction() as tx:
        tx.update_secret(replace(r, version=3), sealed(b"3"), expected_version=1)
    assert store.get_sealed("A") == (replace(r, version=2), sealed(b"2"))


def test_metadata_update_keeps_the_ciphertext(store):
    r = record("A")
    with store.transaction() as tx:
        tx.insert_secret(r, sealed(b"a"))
    with store.transaction() as tx:
        tx.update_secret(replace(r, description="new"), None, expected_version=1)
    got_record, got_sealed = store.get_sealed("A")
    assert got_record.description == "new" and got_sealed == sealed(b"a")


def test_list_filters_and_sorts(store):
    with store.transaction() as tx:
        tx.insert_secret(record("B", owner="bob"), sealed())
        tx.insert_secret(record("A", owner="alice"), sealed())
        tx.insert_secret(record("S", kind="system", owner="alice"), sealed())
    assert [r.name for r in store.list_secrets()] == ["A", "B", "S"]
    assert [r.name for r in store.list_secrets(owner="alice", kind="user")] == ["A"]
    assert [r.name for r in store.list_secrets(kind="system")] == ["S"]


def test_connections_round_trip_and_delete(store):
    c = connection("c", "A")
    with store.transaction() as tx:
        tx.put_connection(c)
        assert tx.get_connection("c") == c
    assert store.get_connection("c") == c and store.list_connections() == [c]
    with store.transaction() as tx:
        tx.delete_connection("c")
    assert store.get_connection("c") is None


def test_sharing_round_trips_on_secrets_and_connections(store):
    """Who may use a secret or a connection is stored by every backend: a backend that
    dropped it would share a group's secret with everyone (found by tests/test_hub.py)."""
    finance = SharedWith(groups=("finance",))
    r = record("A", shared_with=finance)
    with store.transaction() as tx:
        tx.insert_secret(r, sealed())
        tx.put_connection(replace(connection("c", "A"), shared_with=finance))
    assert store.get_secret("A").shared_with == finance
    assert [x.shared_with for x in store.list_secrets()] == [finance]
    assert store.get_connection("c").shared_with == finance
    assert [c.shared_with for c in store.list_connections()] == [finance]
    bob = SharedWith(users=("bob",))
    with store.transaction() as tx:
        tx.update_secret(replace(r, shared_with=bob), None, expected_version=1)
        tx.put_connection(replace(connection("c", "A"), shared_with=None))
    assert store.get_sealed("A")[0].shared_with == bob
    assert store.get_connection("c").shared_with is None


def test_rotation_rows_and_set_sealed(store):
    with store.transaction() as tx:
        tx.insert_secret(record("A"), sealed(b"a"))
    with store.transaction() as tx:
        (row, old), = tx.sealed_rows()
        tx.set_sealed(row.id, Sealed("k2", b"w2", old.ciphertext))
    assert store.get_sealed("A")[1] == Sealed("k2", b"w2", b"cipher-a")
    assert store.key_ids_in_use() == {"k2"}


def test_change_feed_names_what_each_write_touched(store):
    start = store.changes_since(None)
    assert start.touched == frozenset()
    r = record("A")
    with store.transaction() as tx:
        tx.insert_secret(r, sealed())
        tx.put_connection(connection("c", "A"))
    step = store.changes_since(start.marker)
    assert step.names("secret") == {"A"} and step.names("connection") == {"c"}
    assert store.changes_since(step.marker).touched == frozenset(), "nothing new"
    with store.transaction() as tx:
        tx.delete_secret(r.id)
    assert store.changes_since(step.marker).names("secret") == {"A"}
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.insert_secret(record("B"), sealed())
        raise RuntimeError
    assert "B" not in (store.changes_since(step.marker).names("secret") or set())


def test_change_feed_says_reload_when_it_cannot_tell(store):
    with store.transaction() as tx:
        tx.insert_secret(record("A"), sealed())
    end = store.changes_since(None).marker
    assert store.changes_since(end + 1000).touched is None, "a marker from another database"


def test_a_second_handle_sees_committed_changes(store, store_url):
    other = _open_store(store_url)
    try:
        marker = other.changes_since(None).marker
        with store.transaction() as tx:
            tx.insert_secret(record("A"), sealed())
        assert other.changes_since(marker).names("secret") == {"A"}
        assert other.get_secret("A") is not None
    finally:
        other.close()


def test_reopening_migrates_nothing_twice(store, store_url):
    with store.transaction() as tx:
        tx.insert_secret(record("A"), sealed())
    store.close()
    again = _open_store(store_url)
    try:
        assert [r.name for r in again.list_secrets()] == ["A"]
    finally:
        again.close()


def test_use_counts_add_up(store):
    with store.transaction() as tx:
        tx.insert_secret(record("A"), sealed())
    store.record_use({"A": 2, "MISSING": 1}, "2030-01-01T00:00:00.000Z")
    store.record_use({"A": 1}, "2030-01-02T00:00:00.000Z")
    got = store.get_secret("A")
    assert (got.use_count, got.last_used_at) == (3, "2030-01-02T00:00:00.000Z")


def test_audit_pages_newest_first_and_prunes(store):
    events = [AuditRecord(time=f"2030-01-0{i}T00:00:00.000Z", user="u" if i % 2 else "v",
                          action="create", secrets=(f"S{i}",)) for i in range(1, 6)]
    store.append_audit(events)
    page = store.query_audit(AuditFilter(limit=2))
    assert [e.secrets for e in page] == [("S5",), ("S4",)]
    rest = store.query_audit(AuditFilter(limit=10, before_id=page[-1].id))
    assert [e.secrets for e in rest] == [("S3",), ("S2",), ("S1",)]
    assert [e.secrets for e in store.query_audit(AuditFilter(secret="S3"))] == [("S3",)]
    assert {e.user for e in store.query_audit(AuditFilter(user="v"))} == {"v"}
    assert store.prune_audit("2030-01-03T00:00:00.000Z") == 2
    assert len(store.query_audit()) == 3


def test_trying_to_append_audit_writes_all_or_nothing(store):
    """``try_append_audit`` writes now only when that needs no waiting: True and every event
    is there, or False and none is (the caller then uses append_audit from a thread)."""
    events = [AuditRecord(time=f"2030-02-0{i}T00:00:00.000Z", user="u", action="proxy_call",
                          secrets=(f"T{i}",)) for i in range(1, 4)]
    written = store.try_append_audit(events)
    found = store.query_audit()
    assert [e.secrets for e in found] == ([("T3",), ("T2",), ("T1",)] if written else [])
    if not written:
        store.append_audit(events)
    assert len(store.query_audit()) == 3
    store.checkpoint()  # housekeeping never fails on an idle store


def test_concurrent_writers_never_lose_an_update(store, store_url):
    """Two handles bump one row's version 50 times each: 100 versions, none lost."""
    r = record("A")
    with store.transaction() as tx:
        tx.insert_secret(r, sealed())

    def bump(handle, times: int) -> None:
        done = 0
        while done < times:
            try:
                with handle.transaction() as tx:
                    current, _ = tx.get_secret("A")
                    tx.update_secret(replace(current, version=current.version + 1), None,
                                     expected_version=current.version)
                done += 1
            except ConcurrentChange:
                continue

    other = _open_store(store_url)
    try:
        threads = [threading.Thread(target=bump, args=(h, 50)) for h in (store, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.close()
    assert store.get_secret("A").version == 101


def token(digest: str, **fields) -> TokenRecord:
    return replace(TokenRecord(digest=digest, kind="kernel", username="u",
                               created_at=now_iso()), **fields)


def test_tokens_round_trip_revoke_and_extend(store):
    marker = store.changes_since(None).marker
    store.put_token(token("d1", kernel_id="k1", server_id="s1", expires_at="2030-01-01"))
    store.put_token(token("d2", kernel_id="k2", server_id="s1", expires_at="2030-01-01"))
    store.put_token(token("d3", kind="run", name="nightly"))
    assert store.get_token("d1").kernel_id == "k1"
    assert store.get_token("nope") is None
    assert [t.digest for t in store.list_tokens(kind="run")] == ["d3"]
    assert store.changes_since(marker).names("token") == {"d1", "d2", "d3"}
    assert store.extend_tokens("s1", ["k1"], "2031-01-01") == 1
    assert store.get_token("d1").expires_at == "2031-01-01"
    assert store.get_token("d2").expires_at == "2030-01-01"
    marker = store.changes_since(None).marker
    assert store.revoke_tokens("2030-06-01", kernel_id="k1") == ["d1"]
    assert store.revoke_tokens("2030-06-02", kernel_id="k1") == [], "already revoked"
    assert store.changes_since(marker).names("token") == {"d1"}
    assert not store.get_token("d1").live("2030-06-01T00:00:00.000Z")
    assert store.get_token("d2").live("2029-01-01") and not store.get_token("d2").live("2031")
    assert sorted(store.revoke_tokens("2030-07-01", server_id="s1")) == ["d2"]
    store.touch_tokens({"d3": "2030-08-01"})
    assert store.get_token("d3").last_used_at == "2030-08-01"
    with pytest.raises(ValueError):
        store.revoke_tokens("2030-07-01")


def test_counters_stop_at_the_limit_across_handles(store, store_url):
    other = _open_store(store_url)
    try:
        counts = [h.count_hit("conn:u", "w1", 3) for h in (store, other, store, other)]
        assert counts == [1, 2, 3, None]
        assert store.count_hit("conn:u", "w2", 3) == 1, "a new window starts over"
        assert store.prune_counters("w2") == 1
        assert store.count_hit("conn:u", "w1", 3) == 1
    finally:
        other.close()


def test_concurrent_hits_never_exceed_the_limit(store, store_url):
    other = _open_store(store_url)
    results: list[int | None] = []

    def hit(handle, times: int) -> None:
        for _ in range(times):
            results.append(handle.count_hit("k", "w", 25))

    try:
        threads = [threading.Thread(target=hit, args=(h, 20)) for h in (store, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.close()
    assert sorted(r for r in results if r is not None) == list(range(1, 26))
    assert results.count(None) == 15


def test_sharing_and_grants_round_trip(store):
    shared = SharedWith(users=("bob",), groups=("analysts",))
    r = record("A", shared_with=shared)
    c = replace(connection("c", "A"), shared_with=shared)
    with store.transaction() as tx:
        tx.insert_secret(r, sealed())
        tx.put_connection(c)
    assert store.get_secret("A").shared_with == shared
    assert store.get_connection("c").shared_with == shared
    with store.transaction() as tx:
        tx.update_secret(replace(r, shared_with=None), None, expected_version=1)
    assert store.get_secret("A").shared_with is None, "None: everyone"
    store.append_audit([AuditRecord(time="2030-01-01T00:00:00.000Z", user="bob",
                                    action="proxy_call", grant="group:analysts")])
    assert store.query_audit()[0].grant == "group:analysts"


def test_insert_keeps_use_counts_as_given(store):
    """migrate copies secrets with their history: the store writes what it is given."""
    r = record("A", use_count=7, last_used_at="2030-01-01T00:00:00.000Z")
    with store.transaction() as tx:
        tx.insert_secret(r, sealed())
    got = store.get_secret("A")
    assert (got.use_count, got.last_used_at) == (7, "2030-01-01T00:00:00.000Z")
