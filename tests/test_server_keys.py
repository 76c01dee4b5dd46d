"""The server and its master key: created safely, never guessed, clear when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_secrets.crypto import Keyring
from jupyter_secrets.keys import generate_key_text
from jupyter_secrets.services.secrets import SecretsService
from jupyter_secrets.store import open_store

from .helpers import ANONYMOUS


async def test_key_file_is_created_0600_outside_the_store_folder(
    server_log, api, key_file: Path, store_path: Path
):
    assert (await api("POST", "secrets", body={"name": "A", "value": "v"}))[0] == 201
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.parent != store_path.parent
    assert str(key_file) in server_log()
    assert key_file.read_text().strip() not in server_log()
    assert store_path.stat().st_mode & 0o777 == 0o600


@pytest.fixture
def store_sealed_with_another_key(store_path: Path) -> str:
    other = Keyring.from_text(generate_key_text())
    SecretsService(open_store(f"sqlite:///{store_path}"), other).create("ops", "OLD", "v")
    return other.primary.key_id


async def test_missing_key_for_a_full_store_is_a_clear_503(
    server_log, store_sealed_with_another_key: str, api, key_file: Path
):
    status, body = await api("GET", "secrets")
    assert status == 503
    assert store_sealed_with_another_key in body["message"]
    assert "JUPYTER_SECRETS_KEY" in body["message"]
    assert not key_file.exists(), "no new key is invented for a store that needs an old one"
    assert store_sealed_with_another_key in server_log()
    assert (await api("GET", "secrets", headers=ANONYMOUS))[0] == 403


@pytest.fixture
def wrong_key_in_env(monkeypatch: pytest.MonkeyPatch, store_sealed_with_another_key: str) -> str:
    key = generate_key_text()
    monkeypatch.setenv("JUPYTER_SECRETS_KEY", key)
    return Keyring.from_text(key).primary.key_id


async def test_wrong_key_is_named_at_startup_and_metadata_stays_readable(
    server_log, store_sealed_with_another_key: str, wrong_key_in_env: str, api, runtime
):
    errors = [line for line in server_log().splitlines() if "which are not configured" in line]
    assert any(store_sealed_with_another_key in e and wrong_key_in_env in e for e in errors)
    status, body = await api("GET", "secrets")
    assert status == 200 and [s["name"] for s in body["secrets"]] == ["OLD"]
    service = runtime.secrets
    from jupyter_secrets.errors import MasterKeyUnavailable

    with pytest.raises(MasterKeyUnavailable, match=store_sealed_with_another_key):
        service.verify("OLD")
    before = service.store.get_sealed("OLD")
    with pytest.raises(MasterKeyUnavailable):
        service.rotate_master_key()
    assert service.store.get_sealed("OLD") == before, "nothing is overwritten"


async def test_swapped_ciphertexts_are_detected_not_decrypted(
    api, runtime, store_path: Path, canary: str, upstream
):
    """Copy B's sealed row onto A (as an attacker with the DB file would): A fails loudly.

    The copy happens before this server reads A (as after a restart): a running server keeps
    the value it opened from A's own row in its value index and never reads the copy.
    """
    import sqlite3

    from jupyter_secrets.services.secrets import SecretsService
    from jupyter_secrets.store.sqlite import SQLiteStore

    service = runtime.secrets
    host = f"127.0.0.1:{upstream.port}"
    other = SecretsService(SQLiteStore(store_path), service.keyring)  # as the CLI would
    other.create("ops", "A", f"{canary}-a", allowed_hosts=[host])
    other.create("ops", "B", f"{canary}-b", allowed_hosts=[host])
    other.store.close()
    with sqlite3.connect(store_path) as db:
        key_id, wrapped, cipher = db.execute(
            "SELECT key_id, wrapped_key, ciphertext FROM secrets WHERE name = 'B'").fetchone()
        db.execute("UPDATE secrets SET key_id = ?, wrapped_key = ?, ciphertext = ? "
                   "WHERE name = 'A'", (key_id, wrapped, cipher))
    from jupyter_secrets.errors import IntegrityFailure

    with pytest.raises(IntegrityFailure, match=r"Secret A .*integrity check"):
        service.verify("A")
    status, body = await api("POST", "request", body={
        "url": f"{upstream.url}/echo", "headers": {"X": "{{secrets.A}}"}})
    assert status == 500
    assert "Secret A (version 1) failed its integrity check" in body["message"]
    assert upstream.requests == [], "nothing is sent with a value that failed to open"
    assert canary not in body["message"]
