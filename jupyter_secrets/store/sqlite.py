"""The embedded store: one SQLite file in WAL mode, one short transaction per call.

One connection per thread keeps the store safe to use from worker threads (the server
runs calls off its event loop) and cheap on the proxy's hot path; a second process (the
CLI) may write at the same time, and ``BEGIN IMMEDIATE`` serialises writers so version
numbers never race.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from ..crypto import Sealed, SecretIdentity
from ..errors import AlreadyExists, Conflict, NotFound
from .base import (
    AuditRecord,
    Change,
    ChangeResult,
    ConnectionRecord,
    Kind,
    PatchMetadata,
    PutValue,
    Remove,
    Rewrapper,
    SecretRecord,
    SecretStore,
)

SCHEMA_VERSION = 2  # 2: the audit table
_SCHEMA = """
CREATE TABLE IF NOT EXISTS secrets (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL CHECK (kind IN ('user', 'system')),
    description   TEXT NOT NULL DEFAULT '',
    owner         TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_by    TEXT NOT NULL,
    version       INTEGER NOT NULL CHECK (version >= 1),
    allowed_hosts TEXT NOT NULL DEFAULT '[]',
    key_id        TEXT NOT NULL,
    wrapped_key   BLOB NOT NULL,
    ciphertext    BLOB NOT NULL,
    last_used_at  TEXT,
    use_count     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS connections (
    name          TEXT PRIMARY KEY,
    preset        TEXT NOT NULL,
    base_url      TEXT NOT NULL,
    secret        TEXT,
    auth          TEXT NOT NULL,
    headers       TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    owns_secret   INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_by    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: ids page the log
    time          TEXT NOT NULL,
    username      TEXT NOT NULL,
    action        TEXT NOT NULL,
    secrets       TEXT NOT NULL DEFAULT '[]',
    kernel_id     TEXT,
    notebook_path TEXT,
    connection    TEXT,
    host          TEXT,
    method        TEXT,
    path          TEXT,
    status        INTEGER,
    bytes         INTEGER,
    duration_ms   REAL,
    reason        TEXT
);
CREATE INDEX IF NOT EXISTS audit_time ON audit (time);
CREATE INDEX IF NOT EXISTS audit_user ON audit (username, id);
"""
_METADATA_COLUMNS = (
    "id, name, kind, description, owner, created_at, updated_at, updated_by, version, "
    "allowed_hosts, key_id, last_used_at, use_count"
)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _where(conditions: dict[str, object | None]) -> tuple[str, list[object]]:
    """AND together the constant SQL fragments whose parameter is given."""
    given = {sql: value for sql, value in conditions.items() if value is not None}
    return " AND ".join(["1=1", *given]), list(given.values())


def _connection(row: sqlite3.Row) -> ConnectionRecord:
    return ConnectionRecord(
        name=row["name"],
        preset=row["preset"],
        base_url=row["base_url"],
        secret=row["secret"],
        auth=json.loads(row["auth"]),
        headers=json.loads(row["headers"]),
        description=row["description"],
        owns_secret=bool(row["owns_secret"]),
        created_at=row["created_at"],
        created_by=row["created_by"],
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
    )


def _audit(row: sqlite3.Row) -> AuditRecord:
    return AuditRecord(
        id=row["id"],
        time=row["time"],
        user=row["username"],
        action=row["action"],
        secrets=tuple(json.loads(row["secrets"])),
        kernel_id=row["kernel_id"],
        notebook_path=row["notebook_path"],
        connection=row["connection"],
        host=row["host"],
        method=row["method"],
        path=row["path"],
        status=row["status"],
        bytes=row["bytes"],
        duration_ms=row["duration_ms"],
        reason=row["reason"],
    )


def _record(row: sqlite3.Row) -> SecretRecord:
    return SecretRecord(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        description=row["description"],
        owner=row["owner"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
        version=row["version"],
        allowed_hosts=tuple(json.loads(row["allowed_hosts"])),
        key_id=row["key_id"],
        last_used_at=row["last_used_at"],
        use_count=row["use_count"],
    )


class SQLiteStore(SecretStore):
    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = path
        self._timeout = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            # Create the file private to its owner before SQLite writes anything into it.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, opened once: opening one costs more than a lookup."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None,
                                   check_same_thread=False)  # only close() crosses threads
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        yield conn

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.ProgrammingError):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """An immediate (writer-locking) transaction, rolled back on any exception."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- reads -----------------------------------------------------------------------------

    def list(self, *, owner: str | None = None, kind: Kind | None = None) -> list[SecretRecord]:
        where, args = _where({"owner = ?": owner, "kind = ?": kind})
        query = f"SELECT {_METADATA_COLUMNS} FROM secrets WHERE {where}"  # noqa: S608 - constants
        with self._connect() as conn:
            return [_record(r) for r in conn.execute(query + " ORDER BY name", args)]

    def get(self, name: str) -> SecretRecord | None:
        with self._connect() as conn:
            return self._get(conn, name)

    def get_sealed(self, name: str) -> tuple[SecretRecord, Sealed] | None:
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {_METADATA_COLUMNS}, wrapped_key, ciphertext "  # noqa: S608
                "FROM secrets WHERE name = ?",
                (name,),
            ).fetchone()
        if row is None:
            return None
        return _record(row), Sealed(row["key_id"], row["wrapped_key"], row["ciphertext"])

    def key_ids_in_use(self) -> set[str]:
        with self._connect() as conn:
            return {r[0] for r in conn.execute("SELECT DISTINCT key_id FROM secrets")}

    @staticmethod
    def _get(conn: sqlite3.Connection, name: str) -> SecretRecord | None:
        row = conn.execute(
            f"SELECT {_METADATA_COLUMNS} FROM secrets WHERE name = ?",  # noqa: S608
            (name,),
        ).fetchone()
        return _record(row) if row else None

    # -- writes ----------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change]) -> ChangeResult:
        result = ChangeResult()
        with self._write() as conn:
            for change in changes:
                if isinstance(change, PutValue):
                    self._put(conn, change, result)
                elif isinstance(change, PatchMetadata):
                    self._patch(conn, change, result)
                else:
                    self._remove(conn, change, result)
        return result

    @staticmethod
    def _check_kind(existing: SecretRecord, kind: Kind) -> None:
        if existing.kind != kind:
            raise Conflict(
                f"{existing.name} is a {existing.kind} secret; it is managed by the connection "
                "that created it, not edited directly."
                if existing.kind == "system"
                else f"{existing.name} is a user secret and cannot be changed as a {kind} secret."
            )

    def _put(self, conn: sqlite3.Connection, change: PutValue, result: ChangeResult) -> None:
        existing = self._get(conn, change.name)
        now = _now()
        if existing is None:
            if change.mode == "replace":
                raise NotFound(f"No secret named {change.name}; create it first.")
            record = SecretRecord(
                id=uuid.uuid4().hex,
                name=change.name,
                kind=change.kind,
                description=change.description or "",
                owner=change.actor,
                created_at=now,
                updated_at=now,
                updated_by=change.actor,
                version=1,
                allowed_hosts=change.allowed_hosts or (),
                key_id="",
            )
            sealed = change.seal(record.identity)
            conn.execute(
                "INSERT INTO secrets (id, name, kind, description, owner, created_at, updated_at,"
                " updated_by, version, allowed_hosts, key_id, wrapped_key, ciphertext)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.id, record.name, record.kind, record.description, record.owner, now, now,
                 record.updated_by, 1, json.dumps(list(record.allowed_hosts)), sealed.key_id,
                 sealed.wrapped_key, sealed.ciphertext),
            )
        else:
            if change.mode == "create":
                raise AlreadyExists(
                    f"A secret named {change.name} already exists; replace its value instead."
                )
            self._check_kind(existing, change.kind)
            version = existing.version + 1
            sealed = change.seal(SecretIdentity(existing.id, existing.name, version))
            description = existing.description if change.description is None else change.description
            hosts = existing.allowed_hosts if change.allowed_hosts is None else change.allowed_hosts
            conn.execute(
                "UPDATE secrets SET version = ?, key_id = ?, wrapped_key = ?, ciphertext = ?,"
                " updated_at = ?, updated_by = ?, description = ?, allowed_hosts = ?"
                " WHERE id = ? AND version = ?",
                (version, sealed.key_id, sealed.wrapped_key, sealed.ciphertext, now,
                 change.actor, description, json.dumps(list(hosts)), existing.id,
                 existing.version),
            )
        result.upserted.append(change.name)
        result.records[change.name] = self._get(conn, change.name)  # type: ignore[assignment]

    def _patch(self, conn: sqlite3.Connection, change: PatchMetadata, result: ChangeResult) -> None:
        existing = self._get(conn, change.name)
        if existing is None:
            raise NotFound(f"No secret named {change.name}.")
        self._check_kind(existing, change.kind)
        description = existing.description if change.description is None else change.description
        hosts = existing.allowed_hosts if change.allowed_hosts is None else change.allowed_hosts
        conn.execute(
            "UPDATE secrets SET description = ?, allowed_hosts = ?, updated_at = ?,"
            " updated_by = ? WHERE id = ?",
            (description, json.dumps(list(hosts)), _now(), change.actor, existing.id),
        )
        result.records[change.name] = self._get(conn, change.name)  # type: ignore[assignment]

    def _remove(self, conn: sqlite3.Connection, change: Remove, result: ChangeResult) -> None:
        existing = self._get(conn, change.name)
        if existing is None:
            if change.missing_ok:
                return
            raise NotFound(f"No secret named {change.name}.")
        self._check_kind(existing, change.kind)
        users = self._connections_using(conn, change.name)
        if users and not change.force:
            raise Conflict(
                f"{change.name} is used by connection(s) {', '.join(users)}; change or delete "
                "them first, or delete with force=true (they will then fail until fixed)."
            )
        conn.execute("DELETE FROM secrets WHERE id = ?", (existing.id,))
        result.deleted.append(change.name)

    # -- connections -----------------------------------------------------------------------

    def list_connections(self) -> list[ConnectionRecord]:
        with self._connect() as conn:
            return [_connection(r) for r in conn.execute("SELECT * FROM connections ORDER BY name")]

    def get_connection(self, name: str) -> ConnectionRecord | None:
        with self._connect() as conn:
            return self._get_connection(conn, name)

    @staticmethod
    def _get_connection(conn: sqlite3.Connection, name: str) -> ConnectionRecord | None:
        row = conn.execute("SELECT * FROM connections WHERE name = ?", (name,)).fetchone()
        return _connection(row) if row else None

    @staticmethod
    def _connections_using(conn: sqlite3.Connection, secret: str) -> list[str]:
        rows = conn.execute("SELECT * FROM connections ORDER BY name").fetchall()
        return [r["name"] for r in rows if secret in _connection(r).secrets_used()]

    def save_connection(
        self, record: ConnectionRecord, *, create: bool, secret: PutValue | None = None
    ) -> ConnectionRecord:
        now = _now()
        with self._write() as conn:
            existing = self._get_connection(conn, record.name)
            if create and existing is not None:
                raise AlreadyExists(f"A connection named {record.name} already exists.")
            if not create and existing is None:
                raise NotFound(f"No connection named {record.name}.")
            if secret is not None:
                self._put(conn, secret, ChangeResult())
            for name in sorted(record.secrets_used()):
                if self._get(conn, name) is None:
                    raise NotFound(
                        f"Connection {record.name} uses secret {name}, which does not exist; "
                        "create it first (or send a value to create it with the connection)."
                    )
            created_at = existing.created_at if existing else now
            created_by = existing.created_by if existing else record.updated_by
            conn.execute(
                "INSERT OR REPLACE INTO connections (name, preset, base_url, secret, auth,"
                " headers, description, owns_secret, created_at, created_by, updated_at,"
                " updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.name, record.preset, record.base_url, record.secret,
                 json.dumps(record.auth), json.dumps(record.headers), record.description,
                 int(record.owns_secret), created_at, created_by, now, record.updated_by),
            )
            if existing and existing.owns_secret and existing.secret != record.secret:
                conn.execute("DELETE FROM secrets WHERE name = ? AND kind = 'system'",
                             (existing.secret,))
            saved = self._get_connection(conn, record.name)
        assert saved is not None
        return saved

    def delete_connection(self, name: str) -> ConnectionRecord:
        with self._write() as conn:
            existing = self._get_connection(conn, name)
            if existing is None:
                raise NotFound(f"No connection named {name}.")
            conn.execute("DELETE FROM connections WHERE name = ?", (name,))
            if existing.owns_secret and existing.secret:
                conn.execute("DELETE FROM secrets WHERE name = ? AND kind = 'system'",
                             (existing.secret,))
        return existing

    def record_use(self, names: Sequence[str]) -> None:
        if not names:
            return
        now = _now()
        counts: dict[str, int] = {}
        for name in names:
            counts[name] = counts.get(name, 0) + 1
        with self._write() as conn:
            conn.executemany(
                "UPDATE secrets SET last_used_at = ?, use_count = use_count + ? WHERE name = ?",
                [(now, count, name) for name, count in counts.items()],
            )

    # -- audit -----------------------------------------------------------------------------

    def append_audit(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO audit (time, username, action, secrets, kernel_id, notebook_path,"
                " connection, host, method, path, status, bytes, duration_ms, reason)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(r.time, r.user, r.action, json.dumps(list(r.secrets)), r.kernel_id,
                  r.notebook_path, r.connection, r.host, r.method, r.path, r.status, r.bytes,
                  r.duration_ms, r.reason) for r in records],
            )

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
        where, args = _where({
            "EXISTS (SELECT 1 FROM json_each(audit.secrets) WHERE value = ?)": secret,
            "username = ?": user,
            "time >= ?": since,
            "action = ?": action,
            "id < ?": before_id,
        })
        query = f"SELECT * FROM audit WHERE {where}"  # noqa: S608 - constant fragments
        with self._connect() as conn:
            rows = conn.execute(query + " ORDER BY id DESC LIMIT ?", [*args, limit])
            return [_audit(r) for r in rows]

    def prune_audit(self, older_than: str) -> int:
        with self._write() as conn:
            return conn.execute("DELETE FROM audit WHERE time < ?", (older_than,)).rowcount

    def rewrap_all(self, rewrap: Rewrapper) -> int:
        changed = 0
        with self._write() as conn:
            rows = conn.execute(
                f"SELECT {_METADATA_COLUMNS}, wrapped_key, ciphertext FROM secrets"  # noqa: S608
            ).fetchall()
            for row in rows:
                record = _record(row)
                old = Sealed(row["key_id"], row["wrapped_key"], row["ciphertext"])
                new = rewrap(record.identity, old)
                if new == old:
                    continue
                conn.execute(
                    "UPDATE secrets SET key_id = ?, wrapped_key = ?, ciphertext = ? WHERE id = ?",
                    (new.key_id, new.wrapped_key, new.ciphertext, record.id),
                )
                changed += 1
        return changed
