"""Secret management use cases, shared by the REST handlers and the CLI.

The service validates input with the one validator, seals values through ``crypto``, decides
what each change means (kinds, versions, "in use" conflicts) and runs those checks and the
writes in one store transaction. It knows nothing of HTTP and never returns a value: values
leave it only boxed, through :meth:`SecretsService.open`, for the egress package.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from .. import crypto
from ..boundary.sharing import SharedWith
from ..crypto import Keyring, Plaintext, Sealed, SecretIdentity
from ..errors import AlreadyExists, Conflict, InvalidInput, NotFound, SecretNotFound, TooLarge
from ..store import ChangeResult, ConnectionRecord, Kind, SecretRecord, Store, Transaction
from ..store.records import KINDS, now_iso
from ..validation import (
    DEFAULT_MAX_VALUE_BYTES,
    DEFAULT_PLACEMENTS,
    normalize_name,
    validate_allowed_hosts,
    validate_description,
    validate_placements,
    validate_shared_with,
    validate_value,
)

DEFAULT_MAX_BATCH = 100
Sealer = Callable[[SecretIdentity], Sealed]
ChangeListener = Callable[[ChangeResult], None]


@dataclass(frozen=True)
class Limits:
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
    max_batch: int = DEFAULT_MAX_BATCH


METADATA_FIELDS = frozenset({"description", "allowed_hosts", "placements", "shared_with"})


@dataclass(frozen=True)
class Metadata:
    """Validated metadata to set; ``None`` keeps what the secret has (or the default)."""

    description: str | None = None
    allowed_hosts: tuple[str, ...] | None = None
    placements: tuple[str, ...] | None = None
    share: bool = False  # whether shared_with is set (None there means everyone)
    shared_with: SharedWith | None = None

    @classmethod
    def parse(cls, fields: Mapping[str, object]) -> Metadata:
        """From raw input: only the keys given are set; unknown keys are an error."""
        unknown = set(fields) - METADATA_FIELDS
        if unknown:
            raise InvalidInput(f"Unknown field(s): {', '.join(sorted(unknown))}.")
        return cls(
            description=validate_description(fields["description"])
            if "description" in fields else None,
            allowed_hosts=validate_allowed_hosts(fields["allowed_hosts"])
            if "allowed_hosts" in fields else None,
            placements=validate_placements(fields["placements"])
            if "placements" in fields else None,
            share="shared_with" in fields,
            shared_with=validate_shared_with(fields["shared_with"])
            if "shared_with" in fields else None,
        )

    def applied_to(self, record: SecretRecord) -> SecretRecord:
        return replace(
            record,
            description=record.description if self.description is None else self.description,
            allowed_hosts=record.allowed_hosts if self.allowed_hosts is None
            else self.allowed_hosts,
            placements=record.placements if self.placements is None else self.placements,
            shared_with=self.shared_with if self.share else record.shared_with,
        )


@dataclass(frozen=True)
class PutValue:
    """Create a secret or replace its value (bumping the version), as ``mode`` says."""

    name: str
    seal: Sealer = field(repr=False)
    actor: str
    mode: Literal["create", "replace", "upsert"]
    kind: Kind = "user"
    metadata: Metadata = Metadata()


@dataclass(frozen=True)
class PatchMetadata:
    name: str
    actor: str
    metadata: Metadata
    kind: Kind = "user"


@dataclass(frozen=True)
class Remove:
    name: str
    kind: Kind = "user"
    missing_ok: bool = False
    force: bool = False  # delete even while connections use it


Change = PutValue | PatchMetadata | Remove


def _check_kind(existing: SecretRecord, kind: Kind) -> None:
    if existing.kind != kind:
        raise Conflict(
            f"{existing.name} is a {existing.kind} secret; it is managed by the connection "
            "that created it, not edited directly."
            if existing.kind == "system"
            else f"{existing.name} is a user secret and cannot be changed as a {kind} secret."
        )


def used_by(connections: Iterable[ConnectionRecord]) -> dict[str, list[str]]:
    """Secret name -> names of the connections that use it."""
    used: dict[str, list[str]] = {}
    for connection in connections:
        for name in sorted(connection.secrets_used()):
            used.setdefault(name, []).append(connection.name)
    return used


class _BatchRows:
    """A batch's rows, read and locked in one go (one round trip on a networked store).

    Each name's row is served once, as read at the start; asked again (a change that
    touches a name twice), the transaction answers, so it sees the batch's own writes.
    """

    def __init__(self, tx: Transaction, names: Iterable[str]) -> None:
        self._tx = tx
        self._unread = set(names)
        self._rows = tx.get_secrets(sorted(self._unread))

    def get(self, name: str) -> tuple[SecretRecord, Sealed] | None:
        if name in self._unread:
            self._unread.discard(name)
            return self._rows.get(name)
        return self._tx.get_secret(name)


class SecretsService:
    def __init__(self, store: Store, keyring: Keyring, limits: Limits | None = None):
        self.store = store
        self.keyring = keyring
        self.limits = limits or Limits()
        self._listeners: list[ChangeListener] = []
        self._listing: builtins.list[SecretRecord] | None = None

    def __repr__(self) -> str:
        return f"SecretsService(store={self.store!r}, keyring={self.keyring!r})"

    def on_change(self, listener: ChangeListener) -> None:
        """Call ``listener`` after every change committed through this service."""
        self._listeners.append(listener)

    def changed(self, result: ChangeResult) -> None:
        self._listing = None
        for listener in self._listeners:
            listener(result)

    def sealer_for(self, raw_value: object) -> Sealer:
        """Validate a new value now; seal it later, once its identity is known."""
        value = validate_value(raw_value, max_bytes=self.limits.max_value_bytes)
        keyring = self.keyring

        def seal(identity: SecretIdentity) -> Sealed:
            return crypto.seal(keyring, identity, value)

        return seal

    # -- reads -----------------------------------------------------------------------------

    def list(self, *, owner: str | None = None, kind: str | None = "user") -> list[SecretRecord]:
        """Metadata, sorted by name, from a cache of the whole table (10,000 rows read and
        turned into records take longer than a listing should): emptied by every change made
        here at once, by other processes' through the change feed (:meth:`forget_listing`)."""
        if kind is not None and kind not in KINDS:
            raise InvalidInput("kind must be one of: user, system, all.")
        records = self._listing
        if records is None:
            rows = self.store.list_secrets()
            users = used_by(self.store.list_connections())
            records = [replace(r, used_by=tuple(users[r.name])) if r.name in users else r
                       for r in rows]
            self._listing = records
        return [r for r in records
                if (owner is None or r.owner == owner) and (kind is None or r.kind == kind)]

    def forget_listing(self) -> None:
        """Metadata changed elsewhere (another process, use counts): list afresh next time."""
        self._listing = None

    def get(self, raw_name: object) -> SecretRecord:
        name = normalize_name(raw_name)
        record = self.store.get_secret(name)
        if record is None:
            raise NotFound(f"No secret named {name}.")
        users = used_by(self.store.list_connections())
        return replace(record, used_by=tuple(users.get(name, ())))

    def open(self, names: Iterable[str]) -> dict[str, tuple[SecretRecord, Plaintext]]:
        """The one routine that opens stored values by name; ``SecretNotFound`` if one is missing.

        Values stay boxed (:class:`Plaintext`); only the egress package reveals them.
        """
        opened: dict[str, tuple[SecretRecord, Plaintext]] = {}
        for name in sorted(set(names)):
            found = self.store.get_sealed(name)
            if found is None:
                raise SecretNotFound(name)
            record, sealed = found
            opened[name] = (record, crypto.open_sealed(self.keyring, record.identity, sealed))
        return opened

    def verify(self, raw_name: object) -> SecretRecord:
        """Open a secret's ciphertext and discard the result: proves key and integrity."""
        name = normalize_name(raw_name)
        return self.open([name])[name][0]

    # -- writes ----------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change]) -> ChangeResult:
        """Every change in one transaction: all of them or none."""
        result = ChangeResult()
        with self.store.transaction() as tx:
            rows = _BatchRows(tx, [c.name for c in changes]) if len(changes) > 1 else None
            for change in changes:
                self.apply_in(tx, change, result, rows)
        self.changed(result)
        return result

    def apply_in(
        self, tx: Transaction, change: Change, result: ChangeResult,
        rows: _BatchRows | None = None,
    ) -> None:
        """One change inside a caller's transaction (connections create their keys so)."""
        found = rows.get(change.name) if rows is not None else tx.get_secret(change.name)
        if isinstance(change, PutValue):
            self._put(tx, change, result, found)
        elif isinstance(change, PatchMetadata):
            self._patch(tx, change, result, found)
        else:
            self._remove(tx, change, result, found)

    def _put(self, tx: Transaction, change: PutValue, result: ChangeResult,
             found: tuple[SecretRecord, Sealed] | None) -> None:
        now = now_iso()
        if found is None:
            if change.mode == "replace":
                raise NotFound(f"No secret named {change.name}; create it first.")
            record = change.metadata.applied_to(SecretRecord(
                id=uuid.uuid4().hex, name=change.name, kind=change.kind, description="",
                owner=change.actor, created_at=now, updated_at=now, updated_by=change.actor,
                version=1, allowed_hosts=(), placements=DEFAULT_PLACEMENTS, key_id="",
            ))
            sealed = change.seal(record.identity)
            tx.insert_secret(record, sealed)
        else:
            existing, _ = found
            if change.mode == "create":
                raise AlreadyExists(
                    f"A secret named {change.name} already exists; replace its value instead."
                )
            _check_kind(existing, change.kind)
            record = change.metadata.applied_to(replace(
                existing, version=existing.version + 1, updated_at=now, updated_by=change.actor,
            ))
            sealed = change.seal(record.identity)
            tx.update_secret(record, sealed, expected_version=existing.version)
        result.upserted.append(change.name)
        result.records[change.name] = replace(record, key_id=sealed.key_id)

    def _patch(self, tx: Transaction, change: PatchMetadata, result: ChangeResult,
               found: tuple[SecretRecord, Sealed] | None) -> None:
        if found is None:
            raise NotFound(f"No secret named {change.name}.")
        existing, _ = found
        _check_kind(existing, change.kind)
        record = change.metadata.applied_to(
            replace(existing, updated_at=now_iso(), updated_by=change.actor)
        )
        tx.update_secret(record, None, expected_version=existing.version)
        result.records[change.name] = record

    def _remove(self, tx: Transaction, change: Remove, result: ChangeResult,
                found: tuple[SecretRecord, Sealed] | None) -> None:
        if found is None:
            if change.missing_ok:
                return
            raise NotFound(f"No secret named {change.name}.")
        existing, _ = found
        _check_kind(existing, change.kind)
        users = used_by(tx.list_connections()).get(change.name, [])
        if users and not change.force:
            raise Conflict(
                f"{change.name} is used by connection(s) {', '.join(users)}; change or delete "
                "them first, or delete with force=true (they will then fail until fixed)."
            )
        tx.delete_secret(existing.id)
        result.deleted.append(change.name)

    def create(
        self, actor: str, raw_name: object, raw_value: object, *, kind: Kind = "user",
        **fields: object,
    ) -> SecretRecord:
        """Create a new secret; ``AlreadyExists`` when the name is taken.

        ``fields`` are metadata (description, allowed_hosts, placements), validated here.
        """
        return self._put_one(actor, raw_name, raw_value, "create", kind, fields)

    def upsert(
        self, actor: str, raw_name: object, raw_value: object, **fields: object
    ) -> SecretRecord:
        """Create or replace (the CLI's ``set``); metadata left out is kept."""
        return self._put_one(actor, raw_name, raw_value, "upsert", "user", fields)

    def _put_one(
        self,
        actor: str,
        raw_name: object,
        raw_value: object,
        mode: Literal["create", "upsert"],
        kind: Kind,
        fields: Mapping[str, object],
    ) -> SecretRecord:
        name = normalize_name(raw_name)
        given = {k: v for k, v in fields.items() if v is not None}
        change = PutValue(name, self.sealer_for(raw_value), actor, mode, kind,
                          Metadata.parse(given))
        return self.apply([change]).records[name]

    def replace(self, actor: str, raw_name: object, raw_value: object) -> SecretRecord:
        name = normalize_name(raw_name)
        change = PutValue(name, self.sealer_for(raw_value), actor, mode="replace")
        return self.apply([change]).records[name]

    def update_metadata(
        self, actor: str, raw_name: object, fields: Mapping[str, object]
    ) -> SecretRecord:
        name = normalize_name(raw_name)
        if not fields:
            raise InvalidInput(f"Nothing to change: send {', '.join(sorted(METADATA_FIELDS))}.")
        change = PatchMetadata(name, actor, Metadata.parse(fields))
        return self.apply([change]).records[name]

    def delete(self, raw_name: object, *, force: bool = False) -> None:
        self.apply([Remove(normalize_name(raw_name), force=force)])

    def batch(self, actor: str, items: Sequence[Mapping[str, object]]) -> ChangeResult:
        """Phoenix-style atomic upsert/delete: ``value: null`` deletes, no ``value`` is an error.

        Every item is validated before anything is written, so one bad item leaves the
        store exactly as it was.
        """
        if len(items) > self.limits.max_batch:
            raise TooLarge(
                f"A batch may hold at most {self.limits.max_batch} secrets (got {len(items)})."
            )
        changes: list[Change] = []
        seen: set[str] = set()
        for index, item in enumerate(items):
            where = f"secrets[{index}]"
            if not isinstance(item, Mapping):
                raise InvalidInput(f'{where} must be an object like {{"key": ..., "value": ...}}.')
            unknown = set(item) - {"key", "value"}
            if unknown:
                raise InvalidInput(f"{where} has unknown field(s): {', '.join(sorted(unknown))}.")
            if "key" not in item:
                raise InvalidInput(f"{where} needs a key (the secret name).")
            if "value" not in item:
                raise InvalidInput(
                    f"{where} has no value: give a value to set it or null to delete it."
                )
            try:
                name = normalize_name(item["key"])
                if name in seen:
                    raise InvalidInput(f"{name} appears more than once in the batch.")
                seen.add(name)
                if item["value"] is None:
                    changes.append(Remove(name, missing_ok=True))
                else:
                    changes.append(PutValue(name, self.sealer_for(item["value"]), actor,
                                            "upsert"))
            except (InvalidInput, TooLarge) as exc:
                raise type(exc)(f"{where}: {exc}") from None
        return self.apply(changes)

    # -- keys ------------------------------------------------------------------------------

    def rotate_master_key(self) -> int:
        """Re-wrap every data key under the primary master key, in one transaction."""
        changed = 0
        with self.store.transaction() as tx:
            for record, sealed in tx.sealed_rows():
                new = crypto.rewrap(self.keyring, record.identity, sealed)
                if new != sealed:
                    tx.set_sealed(record.id, new)
                    changed += 1
        return changed

    def missing_key_ids(self) -> builtins.list[str]:
        return sorted(self.store.key_ids_in_use() - set(self.keyring.key_ids))
