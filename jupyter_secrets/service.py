"""Secret management use cases, shared by the REST handlers and the CLI.

The service validates input with the one validator, seals values through ``crypto``
and hands change sets to the store. It knows nothing of HTTP and never returns a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from . import crypto
from .crypto import Keyring, Plaintext, SecretIdentity
from .errors import InvalidInput, NotFound, TooLarge
from .store import ChangeResult, PatchMetadata, PutValue, Remove, SecretRecord, SecretStore
from .store.base import Change, Kind, Sealer
from .validation import (
    DEFAULT_MAX_VALUE_BYTES,
    normalize_name,
    validate_allowed_hosts,
    validate_description,
    validate_value,
)

DEFAULT_MAX_BATCH = 100
_KINDS = ("user", "system")


@dataclass(frozen=True)
class Limits:
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
    max_batch: int = DEFAULT_MAX_BATCH


class SecretsService:
    def __init__(self, store: SecretStore, keyring: Keyring, limits: Limits | None = None):
        self.store = store
        self.keyring = keyring
        self.limits = limits or Limits()
        self.generation = 0  # bumped on every change made through this process

    def changed(self) -> None:
        """Tell in-process caches (the redaction index) that stored values may differ."""
        self.generation += 1

    def _apply(self, changes: Sequence[Change]) -> ChangeResult:
        try:
            return self.store.apply(changes)
        finally:
            self.changed()

    def __repr__(self) -> str:
        return f"SecretsService(store={self.store!r}, keyring={self.keyring!r})"

    def _sealer(self, value: Plaintext) -> Sealer:
        keyring = self.keyring

        def seal(identity: SecretIdentity) -> crypto.Sealed:
            return crypto.seal(keyring, identity, value)

        return seal

    def _value(self, raw: object) -> Plaintext:
        return validate_value(raw, max_bytes=self.limits.max_value_bytes)

    def sealer_for(self, raw_value: object) -> Sealer:
        """Validate a new value now; seal it later, once the store knows its identity."""
        return self._sealer(self._value(raw_value))

    # -- reads -----------------------------------------------------------------------------

    def list(self, *, owner: str | None = None, kind: str | None = "user") -> list[SecretRecord]:
        if kind is not None and kind not in _KINDS:
            raise InvalidInput("kind must be one of: user, system, all.")
        records = self.store.list(owner=owner, kind=kind)  # type: ignore[arg-type]
        used_by = self._used_by()
        return [replace(r, used_by=tuple(used_by.get(r.name, ()))) for r in records]

    def get(self, raw_name: object) -> SecretRecord:
        name = normalize_name(raw_name)
        record = self.store.get(name)
        if record is None:
            raise NotFound(f"No secret named {name}.")
        return replace(record, used_by=tuple(self._used_by().get(name, ())))

    def _used_by(self) -> dict[str, list[str]]:
        """Secret name -> names of the connections that use it."""
        used: dict[str, list[str]] = {}
        for connection in self.store.list_connections():
            for name in sorted(connection.secrets_used()):
                used.setdefault(name, []).append(connection.name)
        return used

    # -- writes ----------------------------------------------------------------------------

    def create(
        self,
        actor: str,
        raw_name: object,
        raw_value: object,
        *,
        description: object = None,
        allowed_hosts: object = None,
        kind: Kind = "user",
    ) -> SecretRecord:
        """Create a new secret; ``AlreadyExists`` when the name is taken."""
        return self._put(actor, raw_name, raw_value, "create", description, allowed_hosts, kind)

    def upsert(
        self,
        actor: str,
        raw_name: object,
        raw_value: object,
        *,
        description: object = None,
        allowed_hosts: object = None,
    ) -> SecretRecord:
        """Create or replace (the CLI's ``set``); metadata left out is kept."""
        return self._put(actor, raw_name, raw_value, "upsert", description, allowed_hosts, "user")

    def _put(
        self,
        actor: str,
        raw_name: object,
        raw_value: object,
        mode: Literal["create", "upsert"],
        description: object,
        allowed_hosts: object,
        kind: Kind,
    ) -> SecretRecord:
        name = normalize_name(raw_name)
        change = PutValue(
            name=name,
            seal=self._sealer(self._value(raw_value)),
            actor=actor,
            mode=mode,
            kind=kind,
            description=None if description is None else validate_description(description),
            allowed_hosts=None if allowed_hosts is None else validate_allowed_hosts(allowed_hosts),
        )
        return self._apply([change]).records[name]

    def replace(self, actor: str, raw_name: object, raw_value: object) -> SecretRecord:
        name = normalize_name(raw_name)
        change = PutValue(name, self._sealer(self._value(raw_value)), actor, mode="replace")
        return self._apply([change]).records[name]

    def update_metadata(
        self, actor: str, raw_name: object, fields: Mapping[str, object]
    ) -> SecretRecord:
        name = normalize_name(raw_name)
        description = (
            validate_description(fields["description"]) if "description" in fields else None
        )
        hosts = (
            validate_allowed_hosts(fields["allowed_hosts"]) if "allowed_hosts" in fields else None
        )
        change = PatchMetadata(name, actor, description=description, allowed_hosts=hosts)
        return self._apply([change]).records[name]

    def delete(self, actor: str, raw_name: object, *, force: bool = False) -> None:
        self._apply([Remove(normalize_name(raw_name), force=force)])

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
                    seal = self._sealer(self._value(item["value"]))
                    changes.append(PutValue(name, seal, actor, mode="upsert"))
            except (InvalidInput, TooLarge) as exc:
                raise type(exc)(f"{where}: {exc}") from None
        return self._apply(changes)

    # -- keys ------------------------------------------------------------------------------

    def rotate_master_key(self) -> int:
        """Re-wrap every data key under the primary master key, in one transaction."""
        keyring = self.keyring
        return self.store.rewrap_all(
            lambda identity, sealed: crypto.rewrap(keyring, identity, sealed)
        )

    def missing_key_ids(self) -> list[str]:
        return sorted(self.store.key_ids_in_use() - set(self.keyring.key_ids))

    def verify(self, raw_name: object) -> SecretRecord:
        """Open a secret's ciphertext and discard the result: proves key and integrity."""
        name = normalize_name(raw_name)
        found = self.store.get_sealed(name)
        if found is None:
            raise NotFound(f"No secret named {name}.")
        record, sealed = found
        crypto.open_sealed(self.keyring, record.identity, sealed)
        return record
