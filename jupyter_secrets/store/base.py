"""The store interface: rows of metadata plus ciphertext, and atomic change sets.

A store never sees plaintext. A change that sets a value carries a ``seal`` callback
that the store calls inside its transaction, once it knows the identity (id, name,
version) the ciphertext must be bound to; the callback returns ciphertext only.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..crypto import Sealed, SecretIdentity

Kind = Literal["user", "system"]
Sealer = Callable[[SecretIdentity], Sealed]
Rewrapper = Callable[[SecretIdentity, Sealed], Sealed]


@dataclass(frozen=True)
class SecretRecord:
    """A secret's metadata: everything about it except its value."""

    id: str
    name: str
    kind: Kind
    description: str
    owner: str
    created_at: str
    updated_at: str
    updated_by: str
    version: int
    allowed_hosts: tuple[str, ...]
    key_id: str
    last_used_at: str | None = None
    use_count: int = 0
    used_by: tuple[str, ...] = ()

    @property
    def identity(self) -> SecretIdentity:
        return SecretIdentity(self.id, self.name, self.version)

    def to_json(self) -> dict[str, Any]:
        """The API's view: metadata only, by construction (a record holds no value)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "owner": self.owner,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
            "version": self.version,
            "allowed_hosts": list(self.allowed_hosts),
            "key_id": self.key_id,
            "used_by": list(self.used_by),
            "last_used_at": self.last_used_at,
            "use_count": self.use_count,
        }


@dataclass(frozen=True)
class PutValue:
    """Create a secret or replace its value (bumping the version), as ``mode`` says."""

    name: str
    seal: Sealer = field(repr=False)
    actor: str
    mode: Literal["create", "replace", "upsert"]
    kind: Kind = "user"
    description: str | None = None
    allowed_hosts: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PatchMetadata:
    name: str
    actor: str
    kind: Kind = "user"
    description: str | None = None
    allowed_hosts: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Remove:
    name: str
    kind: Kind = "user"
    missing_ok: bool = False
    force: bool = False  # delete even while connections use it


@dataclass(frozen=True)
class ConnectionRecord:
    """An admin-defined way to call a service. Holds secret *names*, never values."""

    name: str
    preset: str
    base_url: str
    secret: str | None
    auth: dict[str, str]
    headers: dict[str, str]
    description: str = ""
    owns_secret: bool = False  # the secret is a system secret created with the connection
    created_at: str = ""
    created_by: str = ""
    updated_at: str = ""
    updated_by: str = ""

    def secrets_used(self) -> set[str]:
        """Its own secret plus every ``{{secrets.NAME}}`` in its extra headers."""
        from ..egress.placeholders import find_names

        used = {self.secret} if self.secret else set()
        for value in self.headers.values():
            used |= find_names(value)
        return used

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "preset": self.preset,
            "base_url": self.base_url,
            "secret": self.secret,
            "auth": dict(self.auth),
            "headers": dict(self.headers),
            "description": self.description,
            "owns_secret": self.owns_secret,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True)
class AuditRecord:
    """One audit event: who did what with which names, where to. Never a value.

    Nor headers, bodies or query strings: those are where values (and other keys) travel.
    ``id`` is assigned by the store and only grows, so it pages the log (keyset paging).
    """

    time: str
    user: str
    action: str
    secrets: tuple[str, ...] = ()
    kernel_id: str | None = None
    notebook_path: str | None = None
    connection: str | None = None
    host: str | None = None
    method: str | None = None
    path: str | None = None
    status: int | None = None
    bytes: int | None = None
    duration_ms: float | None = None
    reason: str | None = None
    id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "user": self.user,
            "kernel_id": self.kernel_id,
            "notebook_path": self.notebook_path,
            "action": self.action,
            "secrets": list(self.secrets),
            "connection": self.connection,
            "host": self.host,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "bytes": self.bytes,
            "duration_ms": self.duration_ms,
            "reason": self.reason,
        }


Change = PutValue | PatchMetadata | Remove


@dataclass
class ChangeResult:
    upserted: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    records: dict[str, SecretRecord] = field(default_factory=dict)


class SecretStore(abc.ABC):
    """What the services need from a database. SQLite now; PostgreSQL can follow."""

    @abc.abstractmethod
    def list(self, *, owner: str | None = None, kind: Kind | None = None) -> list[SecretRecord]:
        """Metadata of all secrets, sorted by name, optionally filtered."""

    @abc.abstractmethod
    def get(self, name: str) -> SecretRecord | None: ...

    @abc.abstractmethod
    def get_sealed(self, name: str) -> tuple[SecretRecord, Sealed] | None: ...

    @abc.abstractmethod
    def apply(self, changes: Sequence[Change]) -> ChangeResult:
        """Apply every change in one transaction: all of them or none.

        Raises ``AlreadyExists``, ``NotFound`` or ``Conflict`` (system secrets) and leaves
        the store untouched when any change fails, including when a ``seal`` raises.
        """

    @abc.abstractmethod
    def rewrap_all(self, rewrap: Rewrapper) -> int:
        """Re-wrap every stored data key in one transaction; return how many changed."""

    @abc.abstractmethod
    def key_ids_in_use(self) -> set[str]: ...

    @abc.abstractmethod
    def list_connections(self) -> list[ConnectionRecord]: ...

    @abc.abstractmethod
    def get_connection(self, name: str) -> ConnectionRecord | None: ...

    @abc.abstractmethod
    def save_connection(
        self, record: ConnectionRecord, *, create: bool, secret: PutValue | None = None
    ) -> ConnectionRecord:
        """Insert (``create``) or update a connection, with its system secret, atomically."""

    @abc.abstractmethod
    def delete_connection(self, name: str) -> ConnectionRecord:
        """Delete a connection and the system secret it owns, atomically."""

    @abc.abstractmethod
    def record_use(self, names: Sequence[str]) -> None:
        """Bump last-used time and use count of the named secrets."""

    @abc.abstractmethod
    def append_audit(self, records: Sequence[AuditRecord]) -> None:
        """Append audit events (ids are assigned here, in order) in one transaction."""

    @abc.abstractmethod
    def query_audit(
        self,
        *,
        secret: str | None = None,
        user: str | None = None,
        since: str | None = None,
        action: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditRecord]:
        """Newest first; ``before_id`` continues a page (ids below it), ``since`` is ISO UTC."""

    @abc.abstractmethod
    def prune_audit(self, older_than: str) -> int:
        """Delete events older than an ISO UTC time; return how many went."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources; the default store has nothing to release."""
