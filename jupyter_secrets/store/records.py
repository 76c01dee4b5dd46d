"""What the store holds, as plain records: metadata, ciphertext and names, never a value."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from ..boundary.placeholders import find_names
from ..boundary.sharing import SharedWith, shared_json
from ..crypto import SecretIdentity

Kind = Literal["user", "system"]
KINDS: tuple[Kind, ...] = ("user", "system")


def now_iso(now: datetime | None = None) -> str:
    """UTC with milliseconds and a ``Z``: sorts as text, so stores compare strings."""
    now = now or datetime.now(timezone.utc)
    return now.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
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
    placements: tuple[str, ...] = ("header",)
    shared_with: SharedWith | None = None
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
            "placements": list(self.placements),
            "shared_with": shared_json(self.shared_with),
            "key_id": self.key_id,
            "used_by": list(self.used_by),
            "last_used_at": self.last_used_at,
            "use_count": self.use_count,
        }


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
    shared_with: SharedWith | None = None
    #: Variables kernels get for this connection (None: none), values are templates with
    #: ``{base_url}`` (the proxy URL for it) and ``{token}`` (the kernel's own token).
    env: dict[str, str] | None = None
    #: Calls per user per minute and per day through this connection (None: no limit).
    rate_limit: int | None = None
    daily_quota: int | None = None
    created_at: str = ""
    created_by: str = ""
    updated_at: str = ""
    updated_by: str = ""

    def secrets_used(self) -> set[str]:
        """Its own secret plus every ``{{secrets.NAME}}`` in its extra headers."""
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
            "shared_with": shared_json(self.shared_with),
            "export_env": self.env is not None,
            "env": dict(self.env) if self.env is not None else None,
            "rate_limit": self.rate_limit,
            "daily_quota": self.daily_quota,
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
    grant: str | None = None  # what let the caller use it: everyone, admin, user:x, group:y
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
            "grant": self.grant,
        }


@dataclass(frozen=True)
class AuditFilter:
    """What an audit query may filter on; ``before_id`` continues a page (keyset paging)."""

    secret: str | None = None
    user: str | None = None
    since: str | None = None
    action: str | None = None
    limit: int = 100
    before_id: int | None = None


ALL_EVENTS = AuditFilter()

@dataclass(frozen=True)
class RuntimeRecord:
    """A running server (or service replica) and the master key ids it holds."""

    id: str
    host: str
    pid: int
    key_ids: tuple[str, ...]
    key_source: str  # "env", or "file:<path>" for a key file it follows
    seen_at: str


TokenKind = Literal["kernel", "server", "run"]


@dataclass(frozen=True)
class TokenRecord:
    """A credential the service issued, known by its SHA-256 digest (never the token).

    ``kernel``: minted for one kernel of one user, revoked with it or when the server that
    asked for it stops sending heartbeats (``expires_at`` is pushed forward by each one).
    ``server``: a user's Jupyter server in client mode (mints kernel tokens, uses secrets).
    ``run``: a headless run (papermill, jobs), use-only, expiring.
    """

    digest: str
    kind: TokenKind
    username: str
    created_at: str
    kernel_id: str | None = None
    server_id: str | None = None  # the server token that minted a kernel token
    name: str | None = None
    expires_at: str | None = None
    revoked_at: str | None = None
    last_used_at: str | None = None

    def live(self, now: str) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def to_json(self) -> dict[str, Any]:
        """Metadata only: the digest identifies it (a prefix is shown), never the token."""
        return {
            "id": self.digest[:16], "kind": self.kind, "username": self.username,
            "kernel_id": self.kernel_id, "name": self.name, "created_at": self.created_at,
            "expires_at": self.expires_at, "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
        }


ChangeKind = Literal["secret", "connection", "token"]


@dataclass(frozen=True)
class Changes:
    """What changed since a marker: ``touched`` is None when the feed cannot tell (reload)."""

    marker: int
    touched: frozenset[tuple[ChangeKind, str]] | None

    def names(self, kind: ChangeKind) -> set[str] | None:
        if self.touched is None:
            return None
        return {name for k, name in self.touched if k == kind}


@dataclass
class ChangeResult:
    """What a change set did: names written and deleted, and the records as they now are."""

    upserted: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    records: dict[str, SecretRecord] = field(default_factory=dict)
