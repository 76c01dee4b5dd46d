"""What only PostgreSQL has to prove: URLs and passwords, concurrent migrations, collation,
NOTIFY, a feed that never skips a commit, atomic counters across processes, and a database
that restarts under the store (in flight, between calls, and down for a while).

The shared behaviour is in ``test_store_contract.py``, which runs on this backend too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import replace
from urllib.parse import quote

import pytest

from jupyter_secrets.crypto import Keyring, Sealed, open_sealed, reveal
from jupyter_secrets.errors import InvalidInput, SecretsError, StoreUnavailable
from jupyter_secrets.keys import generate_key_text
from jupyter_secrets.services.secrets import PutValue, SecretsService
from jupyter_secrets.store import AuditFilter, AuditRecord, open_store
from jupyter_secrets.store.migrations import POSTGRES_MIGRATIONS
from jupyter_secrets.store.postgres import PostgresStore, PostgresURL
from jupyter_secrets.store.records import TokenRecord, now_iso

from .test_store_contract import record, sealed


@pytest.fixture
def store(postgres_url):
    opened = open_store(postgres_url)
    yield opened
    opened.close()


def test_location_and_errors_never_show_the_password(postgres_cluster, postgres_url, store):
    db = postgres_cluster.dbname(postgres_url)
    assert store.location == f"postgresql://jsecrets@127.0.0.1:{postgres_cluster.port}/{db}"
    assert postgres_cluster.password not in repr(store) + store.location
    with store.transaction() as tx:
        tx.insert_secret(record("A"), sealed())

    other = open_store(postgres_url.replace("postgresql://", "postgres://"))
    try:
        assert isinstance(other, PostgresStore) and other.get_secret("A") is not None
    finally:
        other.close()

    wrong = postgres_cluster.password.replace("@", "@x")  # another password, as full of symbols
    with pytest.raises(StoreUnavailable) as refused:
        open_store(postgres_url.replace("%40", "%40x", 1))
    message = str(refused.value)
    assert "password authentication failed" in message and store.location in message
    for password in (postgres_cluster.password, wrong):
        assert password not in message and quote(password, safe="") not in message
    with pytest.raises(InvalidInput, match=r'not a valid PostgreSQL URL: .*"bogus"\.$'):
        open_store(postgres_url + "?bogus=1")
    with pytest.raises(StoreUnavailable, match='database "nope" does not exist'):
        open_store(postgres_url.rsplit("/", 1)[0] + "/nope")


def test_url_forms():
    given = PostgresURL.parse("postgres:///secrets?host=/run/pg&password=hunter2&sslmode=require"
                              "&pool_max_size=3&pool_timeout=1.5")
    assert given.location == "postgresql:///secrets?host=%2Frun%2Fpg&sslmode=require"
    assert given.conninfo == ("postgresql:///secrets?host=%2Frun%2Fpg&password=hunter2"
                              "&sslmode=require&connect_timeout=10")
    assert (given.pool_max_size, given.pool_timeout) == (3, 1.5)
    assert given.scrub("oops hunter2") == "oops ***"
    with pytest.raises(InvalidInput, match="pool_max_size must be a number"):
        PostgresURL.parse("postgresql://u@h/db?pool_max_size=lots")


def test_concurrent_openers_migrate_once(postgres_cluster):
    url = postgres_cluster.create_database()
    start = threading.Barrier(4)
    opened: list[object] = []
    failures: list[BaseException] = []

    def open_one() -> None:
        start.wait()
        try:
            opened.append(open_store(url))
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for handle in opened:
        handle.close()
    assert failures == [] and len(opened) == 4
    with postgres_cluster.admin(postgres_cluster.dbname(url)) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
    assert versions == [version for version, _ in POSTGRES_MIGRATIONS], "each step once"


def test_a_newer_schema_is_refused_with_what_to_do(postgres_cluster, postgres_url, store):
    with postgres_cluster.admin(postgres_cluster.dbname(postgres_url)) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (99)")
    with pytest.raises(SecretsError, match=r"schema version 99.*upgrade jupyter-secrets"):
        open_store(postgres_url)


def test_names_sort_and_times_compare_byte_by_byte_whatever_the_locale(postgres_cluster):
    """An en-US database sorts ``A_2`` first and ignores punctuation; the store must not."""
    url = postgres_cluster.create_database(icu_locale="en-US")
    store = open_store(url)
    try:
        with store.transaction() as tx:
            for name in ("AB", "A_2", "A1"):
                tx.insert_secret(record(name), sealed())
        assert [r.name for r in store.list_secrets()] == sorted(["AB", "A_2", "A1"])
        store.append_audit([AuditRecord(time="2030-01-02T00:00:00.000Z", user="u",
                                        action="create"),
                            AuditRecord(time="2030-01-02", user="u", action="delete")])
        since = store.query_audit(AuditFilter(since="2030-01-02T"))
        assert [e.action for e in since] == ["create"], "'2030-01-02' < '2030-01-02T' bytewise"
        assert store.count_hit("k", "2030-01-02T10:00", 5) == 1
        assert store.count_hit("k", "2030-01-02T09:00", 5) == 1
        assert store.prune_counters("2030-01-02T10:00") == 1
    finally:
        store.close()


def test_notify_wakes_another_process_at_once(postgres_url, store):
    other = open_store(postgres_url)
    try:
        connected = threading.Event()
        stop = other.watch(connected.set)
        assert connected.wait(10), "the listener connects and says so"
        connected.clear()
        marker = other.changes_since(None).marker

        def write() -> None:
            with store.transaction() as tx:
                tx.insert_secret(record("A"), sealed())

        threading.Timer(0.2, write).start()
        # Without NOTIFY this would sleep the whole timeout and return nothing touched.
        changes = other.wait_for_change(marker, timeout=60)
        assert changes.names("secret") == {"A"}
        assert connected.wait(10), "the watcher was called too"
        stop()
        assert other.wait_for_change(changes.marker, timeout=0.2).touched == frozenset()
    finally:
        other.close()


def test_the_feed_never_skips_a_commit_under_concurrent_writers(postgres_url, store):
    """Ids are taken in commit order: a poller that saw id N never misses one below it."""
    handles = [open_store(postgres_url) for _ in range(3)]
    written: set[tuple[str, str]] = set()
    seen: set[tuple[str, str]] = set()
    done = threading.Event()

    def tokens(handle, prefix: str) -> None:
        for i in range(40):
            digest = f"{prefix}{i}"
            handle.put_token(TokenRecord(digest=digest, kind="run", username="u",
                                         created_at=now_iso()))
            written.add(("token", digest))

    def secrets(handle) -> None:
        for i in range(20):
            with handle.transaction() as tx:
                tx.insert_secret(record(f"S{i}"), sealed())
            written.add(("secret", f"S{i}"))

    start = store.changes_since(None).marker  # before any writer starts

    def poll() -> None:
        marker = start
        while True:
            finished = done.is_set()
            changes = store.changes_since(marker)
            assert changes.touched is not None
            seen.update(changes.touched)
            marker = changes.marker
            if finished:
                return

    poller = threading.Thread(target=poll)
    poller.start()
    writers = [threading.Thread(target=tokens, args=(handles[0], "a")),
               threading.Thread(target=tokens, args=(handles[1], "b")),
               threading.Thread(target=secrets, args=(handles[2],))]
    try:
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        done.set()
        poller.join()
    finally:
        for handle in handles:
            handle.close()
    assert len(written) == 100 and seen == written


def test_usage_flushes_and_transactions_never_deadlock(postgres_url, store):
    """Transactions locking A and B (in either order) against use counts flushed for both:
    every writer of several rows takes its turn, so none fails and no count is lost."""
    with store.transaction() as tx:
        tx.insert_secret(record("A"), sealed())
        tx.insert_secret(record("B"), sealed())
    other = open_store(postgres_url)
    errors: list[BaseException] = []

    def transactions() -> None:
        try:
            for i in range(40):
                with store.transaction() as tx:
                    for name in ("B", "A") if i % 2 else ("A", "B"):
                        current, _ = tx.get_secret(name)
                        tx.update_secret(replace(current, version=current.version + 1), None,
                                         expected_version=current.version)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    def usage() -> None:
        try:
            for _ in range(40):
                other.record_use({"A": 1, "B": 1}, now_iso())
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=transactions), threading.Thread(target=usage)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.close()
    assert errors == []
    assert {r.name: (r.version, r.use_count) for r in store.list_secrets()} == {
        "A": (41, 40), "B": (41, 40)}


COUNT_SCRIPT = """
import json, os
from jupyter_secrets.store import open_store
store = open_store(os.environ["STORE_URL"])
print(json.dumps([store.count_hit("quota", "w", 25) for _ in range(15)]))
store.close()
"""


def test_counters_are_atomic_across_processes(postgres_url, store):
    env = {**os.environ, "STORE_URL": postgres_url}
    workers = [subprocess.Popen([sys.executable, "-c", COUNT_SCRIPT], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(3)]
    results: list[int | None] = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        results += json.loads(out)
    assert sorted(r for r in results if r is not None) == list(range(1, 26))
    assert results.count(None) == 20
    assert store.count_hit("quota", "w", 25) is None


# -- the database goes away -----------------------------------------------------------------


def test_a_restart_between_calls_goes_unnoticed(postgres_cluster, store):
    with store.transaction() as tx:
        tx.insert_secret(record("A"), sealed())
    marker = store.changes_since(None).marker
    postgres_cluster.restart()
    assert [r.name for r in store.list_secrets()] == ["A"], "the pool replaced its connections"
    with store.transaction() as tx:
        tx.insert_secret(record("B"), sealed())
    assert store.changes_since(marker).names("secret") == {"B"}


def test_pooled_connections_killed_while_idle_are_replaced_unnoticed(
    postgres_cluster, postgres_url
):
    """No check round trip before each call: a dead connection shows on its first statement,
    and that statement (or the transaction's BEGIN) runs again on a live one."""
    store = open_store(postgres_url + "?pool_min_size=3")
    try:
        with store.transaction() as tx:
            tx.insert_secret(record("A"), sealed())
        with postgres_cluster.admin() as conn:
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE usename = 'jsecrets' AND datname = %s",
                (postgres_cluster.dbname(postgres_url),)).fetchall()
        assert len(killed) >= 1
        assert [r.name for r in store.list_secrets()] == ["A"]
        with postgres_cluster.admin() as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                         " WHERE usename = 'jsecrets' AND datname = %s",
                         (postgres_cluster.dbname(postgres_url),))
        with store.transaction() as tx:
            tx.insert_secret(record("B"), sealed())
        assert store.count_hit("k", "w", 5) == 1
    finally:
        store.close()


def test_a_transaction_in_flight_when_the_database_restarts_writes_nothing(
    postgres_cluster, store
):
    with pytest.raises(StoreUnavailable) as gone, store.transaction() as tx:
        tx.insert_secret(record("A"), sealed())
        postgres_cluster.restart()
        tx.insert_secret(record("B"), sealed())
    message = str(gone.value)
    assert message.startswith(f"The secrets store {store.location} is unreachable (")
    assert message.endswith("nothing was written; try again.")
    assert postgres_cluster.password not in message
    assert store.list_secrets() == [], "no half write"
    with store.transaction() as tx:
        tx.insert_secret(record("A"), sealed())
    assert [r.name for r in store.list_secrets()] == ["A"]


def test_a_batch_cut_by_a_restart_is_all_or_nothing(postgres_cluster, store):
    """Through the service, as the REST handlers call it: the third value's sealing is when
    the database goes; the batch is rolled back whole and a retry succeeds."""
    keyring = Keyring.from_text(generate_key_text())
    service = SecretsService(store, keyring)
    sealer = service.sealer_for("v")

    def restart_then_seal(identity):
        postgres_cluster.restart()
        return sealer(identity)

    changes = [PutValue(f"K{i}", restart_then_seal if i == 2 else sealer, "admin", "upsert")
               for i in range(5)]
    with pytest.raises(StoreUnavailable):
        service.apply(changes)
    assert store.list_secrets() == []
    service.apply([replace(c, seal=sealer) for c in changes])
    assert [r.name for r in store.list_secrets()] == [f"K{i}" for i in range(5)]
    record4, sealed4 = store.get_sealed("K4")
    assert reveal(open_sealed(keyring, record4.identity, sealed4)) == "v"


def test_while_the_database_is_down_calls_fail_fast_then_recover(postgres_cluster):
    url = postgres_cluster.create_database()
    store = open_store(url + "?pool_timeout=2")
    try:
        woke = threading.Event()
        store.watch(woke.set)
        assert woke.wait(10)
        with store.transaction() as tx:
            tx.insert_secret(record("A"), sealed())
        postgres_cluster.stop()
        try:
            with pytest.raises(StoreUnavailable, match=r"is unreachable \(.*Connection refused"):
                store.list_secrets()
            with pytest.raises(StoreUnavailable), store.transaction() as tx:
                tx.insert_secret(record("B"), sealed())
        finally:
            postgres_cluster.start()
        woke.clear()
        assert [r.name for r in store.list_secrets()] == ["A"]
        assert woke.wait(30), "the listener reconnects (and says changes may have been missed)"
        woke.clear()
        other = open_store(url)
        try:
            with other.transaction() as tx:
                tx.insert_secret(record("C"), sealed())
        finally:
            other.close()
        assert woke.wait(10), "notifications flow again after the restart"
    finally:
        store.close()


def test_values_never_reach_the_database_in_clear(postgres_cluster, postgres_url, store, canary):
    keyring = Keyring.from_text(generate_key_text())
    service = SecretsService(store, keyring)
    service.create("admin", "CANARY", canary, description="d", allowed_hosts=["api.example.com"])
    found = store.get_sealed("CANARY")
    assert isinstance(found[1], Sealed)
    assert reveal(open_sealed(keyring, found[0].identity, found[1])) == canary
    dump = postgres_cluster.dump(postgres_cluster.dbname(postgres_url))
    assert "CANARY" in dump and "api.example.com" in dump
    assert canary not in dump and canary.encode().hex() not in dump
    assert found[0].id in dump and found[1].ciphertext.hex() in dump, "ciphertext only"
