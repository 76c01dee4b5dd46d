"""Copy one store into another, every value re-sealed under the destination's master key.

``jupyter secrets migrate`` moves an embedded (SQLite) store into the service's PostgreSQL
store with it. Each value is opened with the source's keyring and sealed again under the
destination's primary key, with a fresh data key and the same identity (id, name, version),
in this process's memory; it stays boxed (``crypto.Plaintext``) throughout and is written
nowhere but the destination's ciphertext. Everything is read and re-sealed before the
destination is touched, and the destination writes it all in one transaction: a failure
anywhere leaves it exactly as it was. The source is left as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

from .. import crypto
from ..crypto import Keyring, Sealed
from ..errors import InvalidInput, MasterKeyUnavailable
from ..keys import KeySource
from ..protocol import TARGET_KEY_ENV
from ..store import AuditFilter, AuditRecord, ConnectionRecord, SecretRecord, Store
from ..store.records import now_iso

AUDIT_PAGE = 1000


@runtime_checkable
class Importer(Protocol):
    """A store that takes another's rows as they are (versions, times), in one transaction."""

    location: str

    def import_rows(
        self,
        secrets: Sequence[tuple[SecretRecord, Sealed]],
        connections: Sequence[ConnectionRecord],
        audit: Sequence[AuditRecord],
        *,
        merge: bool,
    ) -> None: ...


@dataclass(frozen=True)
class TransferResult:
    secrets: tuple[str, ...]
    connections: tuple[str, ...]
    audit_events: int
    key_id: str


def target_keyring(env_value: str | None, key_file: str | None, log: logging.Logger) -> Keyring:
    """The destination's master key: ``$JUPYTER_SECRETS_TARGET_KEY`` or a key file (0600)."""
    given = bool(env_value and env_value.strip())
    if given and key_file:
        raise InvalidInput(f"Give the destination's master key one way: {TARGET_KEY_ENV} or "
                           "--target-key-file, not both.")
    if key_file:
        path = Path(key_file).expanduser()
        if not path.is_file():
            raise InvalidInput(f"No key file at {path}. Write the destination's key there "
                               "(mode 0600), or generate one with `jupyter secrets generate-key`.")
        return KeySource(None, path).load(set, log)  # an existing file: read, never created
    if given and env_value:
        return Keyring.from_text(env_value)
    raise InvalidInput(
        f"Give the master key the destination will be opened with: set {TARGET_KEY_ENV} "
        "(as JUPYTER_SECRETS_KEY, new key first) or pass --target-key-file PATH (mode 0600). "
        "Generate a new one with `jupyter secrets generate-key`."
    )


def every_audit_event(store: Store) -> list[AuditRecord]:
    """The whole log, oldest first, without ids (the destination assigns its own)."""
    events: list[AuditRecord] = []
    before: int | None = None
    while True:
        page = store.query_audit(AuditFilter(limit=AUDIT_PAGE, before_id=before))
        events.extend(page)
        if len(page) < AUDIT_PAGE:
            break
        before = page[-1].id
    return [replace(e, id=None) for e in reversed(events)]


def reseal(
    source: Keyring, target: Keyring, record: SecretRecord, sealed: Sealed
) -> tuple[SecretRecord, Sealed]:
    """Open under the source's keys, seal under the destination's primary, same identity."""
    value = crypto.open_sealed(source, record.identity, sealed)
    again = crypto.seal(target, record.identity, value)
    return replace(record, key_id=again.key_id, used_by=()), again


def transfer(
    source: Store,
    source_keyring: Keyring,
    target: Store,
    target_keyring: Keyring,
    *,
    merge: bool,
    actor: str,
) -> TransferResult:
    """Copy secrets, connections and the audit log from ``source`` into ``target``."""
    if not isinstance(target, Importer):
        raise InvalidInput(f"{target.location} cannot receive a migration: the destination must "
                           "be a PostgreSQL store (postgresql://user@host:port/dbname).")
    if source.location == target.location:
        raise InvalidInput("The destination is the store being copied; name another one.")
    foreign = sorted(target.key_ids_in_use() - set(target_keyring.key_ids))
    if foreign:
        raise MasterKeyUnavailable(
            f"{target.location} holds secrets sealed with master key id(s) {', '.join(foreign)}, "
            f"which the destination key given ({', '.join(target_keyring.key_ids)}) does not "
            "hold: give the key the destination is used with."
        )
    with source.transaction() as tx:  # one consistent snapshot; the source's writers wait
        rows = tx.sealed_rows()
        connections = tx.list_connections()
    secrets = [reseal(source_keyring, target_keyring, record, sealed) for record, sealed in rows]
    audit = every_audit_event(source)
    audit.append(AuditRecord(
        time=now_iso(), user=actor, action="migrate",
        reason=f"copied {len(secrets)} secret(s), {len(connections)} connection(s) and "
        f"{len(audit)} audit event(s) from {source.location}",
    ))
    target.import_rows(secrets, connections, audit, merge=merge)
    return TransferResult(tuple(r.name for r, _ in secrets), tuple(c.name for c in connections),
                          len(audit) - 1, target_keyring.primary.key_id)
