"""``jupyter secrets migrate --to postgresql://...``, end to end: the CLI as a subprocess moves
an embedded SQLite store into the private PostgreSQL cluster, re-sealing every value under
the destination's key; all or nothing; the canary nowhere but the destination's ciphertext.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from jupyter_secrets.crypto import Keyring, open_sealed, reveal
from jupyter_secrets.errors import MasterKeyUnavailable
from jupyter_secrets.keys import generate_key_text
from jupyter_secrets.services.connections import ConnectionsService
from jupyter_secrets.services.secrets import SecretsService
from jupyter_secrets.store import AuditFilter, AuditRecord, open_store

from .helpers import assert_no_canary
from .helpers import run_cli as run

GH = "GITHUB_CONNECTION_KEY"  # the system secret the github connection makes for its key


@pytest.fixture
def source(cli_env, canary):
    """An embedded store with a replaced secret, a connection (and its system secret), use
    counts and audit events; the canary is in every value."""
    run(cli_env, "set", "OPENAI_KEY", "--description", "team key", "--allowed-host",
        "api.openai.com", stdin=canary + "-v1")
    assert run(cli_env, "set", "OPENAI_KEY", stdin=canary).returncode == 0
    store = open_store(cli_env["JUPYTER_SECRETS_STORE_URL"])
    try:
        service = SecretsService(store, Keyring.from_text(cli_env["JUPYTER_SECRETS_KEY"]))
        service.create("alice", "DB_PASSWORD", canary + "-db", placements=["header", "body"])
        ConnectionsService(service).create("alice", {
            "name": "github", "preset": "http", "base_url": "https://api.github.com",
            "value": canary + "-gh", "auth": {"scheme": "bearer"},
            "headers": {"X-Team": "data", "X-Extra": "{{secrets.DB_PASSWORD}}"}})
        store.record_use({"OPENAI_KEY": 7}, "2030-01-02T03:04:05.000Z")
        store.append_audit([AuditRecord(time="2030-01-02T03:04:05.000Z", user="bob",
                                        action="proxy_call", secrets=("OPENAI_KEY",),
                                        connection="openai", host="api.openai.com",
                                        method="POST", path="/v1/chat", status=200, bytes=12,
                                        duration_ms=3.5, kernel_id="k1")])
    finally:
        store.close()
    return cli_env


def snapshot(url: str):
    store = open_store(url)
    try:
        sealed = {r.name: store.get_sealed(r.name) for r in store.list_secrets(kind=None)}
        events = list(reversed(store.query_audit(AuditFilter(limit=1000))))
        return sealed, store.list_connections(), events
    finally:
        store.close()


def opened(keyring: Keyring, sealed) -> dict[str, str]:
    return {name: reveal(open_sealed(keyring, record.identity, box))
            for name, (record, box) in sealed.items()}


def migrate_env(env: dict[str, str], cluster, target_key: str) -> dict[str, str]:
    """The destination's password in PGPASSWORD, its key in JUPYTER_SECRETS_TARGET_KEY."""
    return {**env, "PGPASSWORD": cluster.password, "JUPYTER_SECRETS_TARGET_KEY": target_key}


def bare(url: str, cluster) -> str:
    """The URL as the help says to give it: no password on the command line."""
    return cluster.url(cluster.dbname(url), password=False)


def test_migrate_copies_everything_resealed_and_leaks_nothing(
    source, canary, postgres_cluster, postgres_url
):
    target_key = generate_key_text()
    source_keys = Keyring.from_text(source["JUPYTER_SECRETS_KEY"])
    target_keys = Keyring.from_text(target_key)
    before, connections, events = snapshot(source["JUPYTER_SECRETS_STORE_URL"])
    to = bare(postgres_url, postgres_cluster)
    assert postgres_cluster.password not in to

    result = run(migrate_env(source, postgres_cluster, target_key), "migrate", "--to", to)
    assert result.returncode == 0, result.stderr
    assert "Copied 3 secret(s), 1 connection(s) and 3 audit event(s)" in result.stdout
    assert f"sealed under master key {target_keys.primary.key_id}" in result.stdout

    after, copied_connections, copied_events = snapshot(postgres_url)
    assert set(after) == {"OPENAI_KEY", "DB_PASSWORD", GH} == set(before)
    for name, (record, box) in after.items():
        assert record == replace(before[name][0], key_id=target_keys.primary.key_id)
        assert box.key_id == target_keys.primary.key_id
        assert box.ciphertext != before[name][1].ciphertext, "a fresh data key, not a copy"
    assert after["OPENAI_KEY"][0].version == 2 and after["OPENAI_KEY"][0].use_count == 7
    assert opened(target_keys, after) == opened(source_keys, before) == {
        "OPENAI_KEY": canary, "DB_PASSWORD": canary + "-db", GH: canary + "-gh"}
    with pytest.raises(MasterKeyUnavailable):
        opened(source_keys, after)
    assert copied_connections == connections
    assert [replace(e, id=None) for e in copied_events[:-1]] == [
        replace(e, id=None) for e in events]
    last = copied_events[-1]
    assert last.action == "migrate" and "copied 3 secret(s)" in (last.reason or "")
    assert "store/secrets.db" in (last.reason or ""), "where they came from"

    _, _, source_events = snapshot(source["JUPYTER_SECRETS_STORE_URL"])
    assert source_events[-1].action == "migrate", "the source records where it went"
    assert opened(source_keys, snapshot(source["JUPYTER_SECRETS_STORE_URL"])[0]) == opened(
        source_keys, before), "the source is left as it was"

    dump = postgres_cluster.dump(postgres_cluster.dbname(postgres_url))
    assert "OPENAI_KEY" in dump and "api.openai.com" in dump
    for value in (canary, canary + "-db", canary + "-gh"):
        assert value.encode().hex() not in dump
    assert_no_canary(canary, result.stdout, result.stderr, dump, where="migrate output or dump")
    for key in (target_key, source["JUPYTER_SECRETS_KEY"]):
        assert key not in result.stdout + result.stderr + dump


def test_a_target_that_holds_secrets_needs_merge_and_never_a_shared_name(
    source, canary, postgres_cluster, postgres_url
):
    target_key = generate_key_text()
    env = migrate_env(source, postgres_cluster, target_key)
    to = bare(postgres_url, postgres_cluster)
    assert run(env, "migrate", "--to", to).returncode == 0
    first = snapshot(postgres_url)

    again = run(env, "migrate", "--to", to)
    assert again.returncode == 1
    assert "already holds 3 secret(s) and 1 connection(s); nothing was copied" in again.stderr
    assert "--merge" in again.stderr
    clash = run(env, "migrate", "--to", to, "--merge")
    assert clash.returncode == 1
    assert f"Both stores hold DB_PASSWORD, {GH}, OPENAI_KEY, connection github" in clash.stderr
    assert snapshot(postgres_url) == first, "refusals write nothing"

    other = postgres_cluster.create_database()
    store = open_store(other)
    try:
        SecretsService(store, Keyring.from_text(target_key)).create("svc", "ALREADY", "x")
    finally:
        store.close()
    merged = run(env, "migrate", "--to", bare(other, postgres_cluster), "--merge")
    assert merged.returncode == 0, merged.stderr
    sealed, _, _ = snapshot(other)
    assert set(sealed) == {"ALREADY", "OPENAI_KEY", "DB_PASSWORD", GH}
    assert opened(Keyring.from_text(target_key), sealed)["ALREADY"] == "x"

    wrong_key = run(migrate_env(source, postgres_cluster, generate_key_text()), "migrate",
                    "--to", bare(other, postgres_cluster), "--merge")
    assert wrong_key.returncode == 1
    assert "holds secrets sealed with master key id(s)" in wrong_key.stderr
    for result in (again, clash, merged, wrong_key):
        assert_no_canary(canary, result.stdout, result.stderr)


def test_a_value_that_cannot_be_opened_stops_everything(
    source, postgres_cluster, postgres_url, canary
):
    path = source["JUPYTER_SECRETS_STORE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        (blob,) = db.execute("SELECT ciphertext FROM secrets WHERE name = ?", (GH,)).fetchone()
        flipped = blob[:-1] + bytes([blob[-1] ^ 1])
        db.execute("UPDATE secrets SET ciphertext = ? WHERE name = ?", (flipped, GH))
    db.close()
    result = run(migrate_env(source, postgres_cluster, generate_key_text()), "migrate", "--to",
                 bare(postgres_url, postgres_cluster))
    assert result.returncode == 1
    assert GH in result.stderr and "integrity check" in result.stderr
    assert snapshot(postgres_url) == ({}, [], []), "nothing reached the destination"
    assert_no_canary(canary, result.stdout, result.stderr)


def test_the_destination_key_must_be_given_clearly(source, postgres_cluster, postgres_url,
                                                    tmp_path: Path):
    env = {**source, "PGPASSWORD": postgres_cluster.password}
    to = bare(postgres_url, postgres_cluster)
    missing = run(env, "migrate", "--to", to)
    assert missing.returncode == 1
    assert "JUPYTER_SECRETS_TARGET_KEY" in missing.stderr
    assert "--target-key-file" in missing.stderr

    key_file = tmp_path / "service.key"
    key_file.write_text(generate_key_text() + "\n")
    key_file.chmod(0o644)
    loose = run(env, "migrate", "--to", to, "--target-key-file", str(key_file))
    assert loose.returncode == 1 and "chmod 600" in loose.stderr
    key_file.chmod(0o600)
    fine = run(env, "migrate", "--to", to, "--target-key-file", str(key_file))
    assert fine.returncode == 0, fine.stderr
    key_id = Keyring.from_text(key_file.read_text()).primary.key_id
    assert {r.key_id for r, _ in snapshot(postgres_url)[0].values()} == {key_id}

    to_sqlite = run({**env, "JUPYTER_SECRETS_TARGET_KEY": generate_key_text()}, "migrate",
                    "--to", f"sqlite:///{tmp_path}/other.db")
    assert to_sqlite.returncode == 1 and "must be a PostgreSQL store" in to_sqlite.stderr
    for result in (missing, loose, fine, to_sqlite):
        assert "Traceback" not in result.stderr


def test_the_cli_manages_a_postgresql_store(cli_env, canary, postgres_cluster, postgres_url):
    """The runtime on PostgreSQL as the service will use it: the store URL without its
    password (PGPASSWORD holds it), values from stdin, audit written, nothing leaked."""
    env = {**cli_env, "JUPYTER_SECRETS_STORE_URL": bare(postgres_url, postgres_cluster),
           "PGPASSWORD": postgres_cluster.password}
    saved = run(env, "set", "API_KEY", "--allowed-host", "api.example.com", stdin=canary)
    assert saved.returncode == 0, saved.stderr
    assert "Saved API_KEY (version 1)" in saved.stdout
    replaced = run(env, "set", "API_KEY", stdin=canary + "-2")
    assert "version 2" in replaced.stdout
    listing = run(env, "list")
    assert "API_KEY" in listing.stdout and "v2" in listing.stdout
    audit = run(env, "audit", "--secret", "API_KEY")
    assert audit.stdout.count("API_KEY") == 2 and "create" in audit.stdout
    deleted = run(env, "delete", "api_key")
    assert deleted.returncode == 0 and "No secrets yet" in run(env, "list").stdout
    dump = postgres_cluster.dump(postgres_cluster.dbname(postgres_url))
    assert "API_KEY" in dump
    assert_no_canary(canary, saved.stdout, saved.stderr, replaced.stdout, listing.stdout,
                     audit.stdout, deleted.stdout, dump, where="CLI output or dump")
