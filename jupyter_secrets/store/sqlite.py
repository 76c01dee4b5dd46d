"""The embedded store: one SQLite file in WAL mode, one short transaction per call.

One connection per thread keeps the store safe to use from worker threads (the server runs
calls off its event loop) and cheap on hot paths; a second process (the CLI) may write at the
same time, and ``BEGIN IMMEDIATE`` serialises writers so version numbers never race. Rows and
transactions only: what a change means is decided by the services.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..boundary.sharing import SharedWith
from ..crypto import Sealed
from ..errors import ConcurrentChange, InvalidInput, StoreUnavailable
from .base import Store, Transaction
from .migrations import SQLITE_MIGRATIONS, pending
from .records import (
    ALL_EVENTS,
    AuditFilter,
    AuditRecord,
    ChangeKind,
    Changes,
    ConnectionRecord,
    Kind,
    RuntimeRecord,
    SecretRecord,
    TokenKind,
    TokenRecord,
)

_METADATA_COLUMNS = (
    "id, name, kind, description, owner, created_at, updated_at, updated_by, version, "
    "allowed_hosts, placements, shared_with, key_id, last_used_at, use_count"
)
_SEALED_COLUMNS = f"{_METADATA_COLUMNS}, wrapped_key, ciphertext"
CHANGES_KEPT = 10_000  # a reader further behind than this reloads everything


def path_from_url(url: str) -> Path:
    parts = urlsplit(url)
    raw = unquote(parts.netloc + parts.path)
    if not raw or raw == "/":
        raise InvalidInput("The store URL names no file: use sqlite:///absolute/path/secrets.db.")
    if raw.startswith("//"):  # sqlite:////abs/path spells the absolute path with four slashes
        raw = "/" + raw.lstrip("/")
    return Path(raw).expanduser()


@functools.lru_cache(maxsize=4096)
def _json_tuple(text: str) -> tuple[str, ...]:
    """A JSON list column as a tuple: the same few lists repeat over thousands of rows."""
    return tuple(json.loads(text))


@functools.lru_cache(maxsize=1024)
def _shared_from(text: str | None) -> SharedWith | None:
    return SharedWith.from_json(text)


def _shared(shared: SharedWith | None) -> str | None:
    return None if shared is None else shared.dumps()


def _where(conditions: dict[str, object | None]) -> tuple[str, list[object]]:
    """AND together the constant SQL fragments whose parameter is given."""
    given = {sql: value for sql, value in conditions.items() if value is not None}
    return " AND ".join(["1=1", *given]), list(given.values())


def _record(row: sqlite3.Row) -> SecretRecord:
    """A row of ``_METADATA_COLUMNS`` (positions: listing 10,000 rows is a hot path)."""
    return SecretRecord(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8],
        allowed_hosts=_json_tuple(row[9]), placements=_json_tuple(row[10]),
        shared_with=_shared_from(row[11]), key_id=row[12], last_used_at=row[13],
        use_count=row[14],
    )


def _sealed(row: sqlite3.Row) -> tuple[SecretRecord, Sealed]:
    return _record(row), Sealed(row["key_id"], row["wrapped_key"], row["ciphertext"])


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
        shared_with=SharedWith.from_json(row["shared_with"]),
        env=json.loads(row["env"]) if row["env"] is not None else None,
        rate_limit=row["rate_limit"],
        daily_quota=row["daily_quota"],
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
        grant=row["grant_"],
    )


def _insert_audit(conn: sqlite3.Connection, records: Sequence[AuditRecord]) -> None:
    conn.executemany(
        "INSERT INTO audit (time, username, action, secrets, kernel_id, notebook_path,"
        " connection, host, method, path, status, bytes, duration_ms, reason, grant_)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(r.time, r.user, r.action, json.dumps(list(r.secrets)), r.kernel_id,
          r.notebook_path, r.connection, r.host, r.method, r.path, r.status, r.bytes,
          r.duration_ms, r.reason, r.grant) for r in records],
    )


def _is_busy(error: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another connection holds the lock."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
    return "locked" in str(error) or "busy" in str(error)


def _token(row: sqlite3.Row) -> TokenRecord:
    return TokenRecord(
        digest=row["digest"], kind=row["kind"], username=row["username"],
        created_at=row["created_at"], kernel_id=row["kernel_id"], server_id=row["server_id"],
        name=row["name"], expires_at=row["expires_at"], revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


def _touch(conn: sqlite3.Connection, kind: ChangeKind, names: Sequence[str]) -> None:
    conn.executemany("INSERT INTO changes (kind, name) VALUES (?, ?)",
                     [(kind, name) for name in names])


def _select_secret(conn: sqlite3.Connection, name: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        f"SELECT {_SEALED_COLUMNS} FROM secrets WHERE name = ?", (name,)  # noqa: S608
    ).fetchone()
    return row


def _select_connection(conn: sqlite3.Connection, name: str) -> ConnectionRecord | None:
    row = conn.execute("SELECT * FROM connections WHERE name = ?", (name,)).fetchone()
    return _connection(row) if row else None


def _all_connections(conn: sqlite3.Connection) -> list[ConnectionRecord]:
    return [_connection(r) for r in conn.execute("SELECT * FROM connections ORDER BY name")]


class SQLiteTransaction(Transaction):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _touched(self, kind: ChangeKind, name: str) -> None:
        _touch(self.conn, kind, [name])

    def get_secret(self, name: str) -> tuple[SecretRecord, Sealed] | None:
        row = _select_secret(self.conn, name)  # BEGIN IMMEDIATE already locks writers out
        return _sealed(row) if row else None

    def insert_secret(self, record: SecretRecord, sealed: Sealed) -> None:
        self.conn.execute(
            "INSERT INTO secrets (id, name, kind, description, owner, created_at, updated_at,"
            " updated_by, version, allowed_hosts, placements, shared_with, key_id, wrapped_key,"
            " ciphertext, last_used_at, use_count)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.id, record.name, record.kind, record.description, record.owner,
             record.created_at, record.updated_at, record.updated_by, record.version,
             json.dumps(list(record.allowed_hosts)), json.dumps(list(record.placements)),
             _shared(record.shared_with), sealed.key_id, sealed.wrapped_key,
             sealed.ciphertext, record.last_used_at, record.use_count),
        )
        self._touched("secret", record.name)

    def update_secret(
        self, record: SecretRecord, sealed: Sealed | None, *, expected_version: int
    ) -> None:
        columns = ("description = ?, updated_at = ?, updated_by = ?, version = ?,"
                   " allowed_hosts = ?, placements = ?, shared_with = ?")
        args: list[object] = [record.description, record.updated_at, record.updated_by,
                              record.version, json.dumps(list(record.allowed_hosts)),
                              json.dumps(list(record.placements)), _shared(record.shared_with)]
        if sealed is not None:
            columns += ", key_id = ?, wrapped_key = ?, ciphertext = ?"
            args += [sealed.key_id, sealed.wrapped_key, sealed.ciphertext]
        cursor = self.conn.execute(
            f"UPDATE secrets SET {columns} WHERE id = ? AND version = ?",  # noqa: S608
            [*args, record.id, expected_version],
        )
        if cursor.rowcount != 1:
            raise ConcurrentChange(f"{record.name} was changed by another writer; try again.")
        self._touched("secret", record.name)

    def delete_secret(self, secret_id: str) -> None:
        row = self.conn.execute("DELETE FROM secrets WHERE id = ? RETURNING name",
                                (secret_id,)).fetchone()
        if row is not None:
            self._touched("secret", row[0])

    def sealed_rows(self) -> list[tuple[SecretRecord, Sealed]]:
        rows = self.conn.execute(f"SELECT {_SEALED_COLUMNS} FROM secrets ORDER BY name")  # noqa: S608
        return [_sealed(r) for r in rows]

    def set_sealed(self, secret_id: str, sealed: Sealed) -> None:
        row = self.conn.execute(
            "UPDATE secrets SET key_id = ?, wrapped_key = ?, ciphertext = ? WHERE id = ?"
            " RETURNING name",
            (sealed.key_id, sealed.wrapped_key, sealed.ciphertext, secret_id),
        ).fetchone()
        if row is not None:
            self._touched("secret", row[0])

    def get_connection(self, name: str) -> ConnectionRecord | None:
        return _select_connection(self.conn, name)

    def list_connections(self) -> list[ConnectionRecord]:
        return _all_connections(self.conn)

    def put_connection(self, record: ConnectionRecord) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO connections (name, preset, base_url, secret, auth,"
            " headers, description, owns_secret, shared_with, env, rate_limit, daily_quota,"
            " created_at, created_by, updated_at, updated_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.name, record.preset, record.base_url, record.secret,
             json.dumps(record.auth), json.dumps(record.headers), record.description,
             int(record.owns_secret), _shared(record.shared_with),
             None if record.env is None else json.dumps(record.env), record.rate_limit,
             record.daily_quota, record.created_at, record.created_by, record.updated_at,
             record.updated_by),
        )
        self._touched("connection", record.name)

    def delete_connection(self, name: str) -> None:
        self.conn.execute("DELETE FROM connections WHERE name = ?", (name,))
        self._touched("connection", name)


class SQLiteStore(Store):
    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = path
        self.location = str(path)
        self._timeout = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._idle = threading.Condition()
        self._busy = 0
        self._closing = False
        self._nowait: sqlite3.Connection | None = None  # try_append_audit's, never waits
        self._nowait_lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            # Create the file private to its owner before SQLite writes anything into it.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
        self._migrate()

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        return cls(path_from_url(url))

    def __repr__(self) -> str:
        return f"SQLiteStore({self.location!r})"

    def local_folder(self) -> str:
        return str(self.path.parent)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, opened once: opening one costs more than a lookup.

        Counted while in use, so :meth:`close` never closes a connection under another
        thread's feet (SQLite would crash the process).
        """
        with self._idle:
            if self._closing:
                raise StoreUnavailable(f"The secrets store {self.location} is closed.")
            self._busy += 1
        try:
            conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None,
                                       check_same_thread=False)  # only close() crosses threads
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA synchronous=NORMAL")
                self._local.conn = conn
                with self._all_lock:
                    self._all.append(conn)
            yield conn
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

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

    def _migrate(self) -> None:
        with self._write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = row[0]
            if current is None:
                # Stores from before the version table recorded theirs in user_version.
                current = conn.execute("PRAGMA user_version").fetchone()[0]
            for version, script in pending(SQLITE_MIGRATIONS, current):
                for statement in script:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                conn.execute(f"PRAGMA user_version={int(version)}")

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._write() as conn:
            yield SQLiteTransaction(conn)
            self._prune_changes(conn)

    def changes_since(self, marker: int | None) -> Changes:
        with self._connect() as conn:
            end = conn.execute("SELECT COALESCE(MAX(id), 0) FROM changes").fetchone()[0]
            if marker is None or marker == end:
                return Changes(end, frozenset())
            oldest = conn.execute("SELECT MIN(id) FROM changes").fetchone()[0]
            if marker > end or oldest is None or marker < oldest - 1:
                return Changes(end, None)  # pruned past the marker, or another database
            rows = conn.execute("SELECT kind, name FROM changes WHERE id > ? AND id <= ?",
                                (marker, end)).fetchall()
        return Changes(end, frozenset((r[0], r[1]) for r in rows))

    def _prune_changes(self, conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM changes WHERE id <= (SELECT MAX(id) FROM changes) - ?",
                     (CHANGES_KEPT,))

    def close(self, wait_s: float = 10.0) -> None:
        """Close every thread's connection once none is in use (waiting up to ``wait_s``)."""
        with self._idle:
            self._closing = True
            self._idle.wait_for(lambda: self._busy == 0, timeout=wait_s)
        with self._all_lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.ProgrammingError):
                    conn.close()
            self._all.clear()
        self._local = threading.local()
        self._nowait = None

    # -- secrets ---------------------------------------------------------------------------

    def list_secrets(
        self, *, owner: str | None = None, kind: Kind | None = None
    ) -> list[SecretRecord]:
        where, args = _where({"owner = ?": owner, "kind = ?": kind})
        query = f"SELECT {_METADATA_COLUMNS} FROM secrets WHERE {where} ORDER BY name"  # noqa: S608
        with self._connect() as conn:
            return [_record(r) for r in conn.execute(query, args)]

    def get_secret(self, name: str) -> SecretRecord | None:
        with self._connect() as conn:
            row = _select_secret(conn, name)
        return _record(row) if row else None

    def get_sealed(self, name: str) -> tuple[SecretRecord, Sealed] | None:
        with self._connect() as conn:
            row = _select_secret(conn, name)
        return _sealed(row) if row else None

    def key_ids_in_use(self) -> set[str]:
        with self._connect() as conn:
            return {r[0] for r in conn.execute("SELECT DISTINCT key_id FROM secrets")}

    def record_use(self, counts: Mapping[str, int], at: str) -> None:
        if not counts:
            return
        with self._write() as conn:
            conn.executemany(
                "UPDATE secrets SET last_used_at = ?, use_count = use_count + ? WHERE name = ?",
                [(at, count, name) for name, count in counts.items()],
            )

    # -- connections -----------------------------------------------------------------------

    def list_connections(self) -> list[ConnectionRecord]:
        with self._connect() as conn:
            return _all_connections(conn)

    def get_connection(self, name: str) -> ConnectionRecord | None:
        with self._connect() as conn:
            return _select_connection(conn, name)

    # -- audit -----------------------------------------------------------------------------

    def append_audit(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        with self._write() as conn:
            _insert_audit(conn, records)

    def try_append_audit(self, records: Sequence[AuditRecord]) -> bool:
        """Append now unless another connection holds the write lock (then ``False``).

        For the event loop: a commit costs tens of microseconds, a hand-over to the audit
        thread about a millisecond of CPU. Its connection has a busy timeout of zero, so it
        never waits for a lock, and checkpoints off, so it never copies the WAL into the
        database (and syncs) on the caller: :meth:`checkpoint` does that from a thread.
        """
        if not records:
            return True
        if not self._nowait_lock.acquire(blocking=False):
            return False
        try:
            with self._idle:
                if self._closing:
                    raise StoreUnavailable(f"The secrets store {self.location} is closed.")
                self._busy += 1
            try:
                conn = self._nowait or self._open_nowait()
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as error:
                    if _is_busy(error):
                        return False
                    raise
                try:
                    _insert_audit(conn, records)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                return True
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()
        finally:
            self._nowait_lock.release()

    def _open_nowait(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        with self._all_lock:
            self._all.append(conn)
        self._nowait = conn
        return conn

    def checkpoint(self) -> None:
        """Copy the WAL into the database without blocking writers (PASSIVE)."""
        with self._connect() as conn:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def query_audit(self, query: AuditFilter = ALL_EVENTS) -> list[AuditRecord]:
        where, args = _where({
            "EXISTS (SELECT 1 FROM json_each(audit.secrets) WHERE value = ?)": query.secret,
            "username = ?": query.user,
            "time >= ?": query.since,
            "action = ?": query.action,
            "id < ?": query.before_id,
        })
        sql = f"SELECT * FROM audit WHERE {where} ORDER BY id DESC LIMIT ?"  # noqa: S608
        with self._connect() as conn:
            return [_audit(r) for r in conn.execute(sql, [*args, query.limit])]

    def prune_audit(self, older_than: str) -> int:
        with self._write() as conn:
            return int(conn.execute("DELETE FROM audit WHERE time < ?", (older_than,)).rowcount)

    # -- running servers -------------------------------------------------------------------

    def announce_runtime(self, record: RuntimeRecord) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO runtimes (id, host, pid, key_ids, key_source, seen_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (record.id, record.host, record.pid, json.dumps(list(record.key_ids)),
                 record.key_source, record.seen_at),
            )

    def runtimes_seen_since(self, since: str) -> list[RuntimeRecord]:
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM runtimes WHERE seen_at >= ? ORDER BY id",
                                (since,)).fetchall()
        return [RuntimeRecord(r["id"], r["host"], r["pid"], tuple(json.loads(r["key_ids"])),
                              r["key_source"], r["seen_at"]) for r in rows]

    def forget_runtime(self, runtime_id: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM runtimes WHERE id = ?", (runtime_id,))

    # -- tokens ----------------------------------------------------------------------------

    def put_token(self, record: TokenRecord) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO tokens (digest, kind, username, created_at, kernel_id, server_id,"
                " name, expires_at, revoked_at, last_used_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.digest, record.kind, record.username, record.created_at,
                 record.kernel_id, record.server_id, record.name, record.expires_at,
                 record.revoked_at, record.last_used_at),
            )
            _touch(conn, "token", [record.digest])

    def get_token(self, digest: str) -> TokenRecord | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM tokens WHERE digest = ?", (digest,)).fetchone()
        return _token(row) if row else None

    def list_tokens(
        self, *, kind: TokenKind | None = None, username: str | None = None
    ) -> list[TokenRecord]:
        where, args = _where({"kind = ?": kind, "username = ?": username})
        sql = f"SELECT * FROM tokens WHERE {where} ORDER BY created_at DESC"  # noqa: S608
        with self._connect() as conn:
            return [_token(r) for r in conn.execute(sql, args)]

    def revoke_tokens(
        self, at: str, *, digest: str | None = None, kernel_id: str | None = None,
        server_id: str | None = None,
    ) -> list[str]:
        where, args = _where({"digest = ?": digest, "kernel_id = ?": kernel_id,
                              "server_id = ?": server_id})
        if not args:
            raise ValueError("revoke_tokens needs a filter")
        sql = (f"UPDATE tokens SET revoked_at = ? WHERE {where} AND revoked_at IS NULL"  # noqa: S608
               " RETURNING digest")
        with self._write() as conn:
            digests = [r[0] for r in conn.execute(sql, [at, *args]).fetchall()]
            _touch(conn, "token", digests)
        return digests

    def extend_tokens(self, server_id: str, kernel_ids: Sequence[str], until: str) -> int:
        if not kernel_ids:
            return 0
        marks = ", ".join("?" * len(kernel_ids))
        sql = ("UPDATE tokens SET expires_at = ? WHERE server_id = ? AND kind = 'kernel'"  # noqa: S608 - placeholders only
               f" AND revoked_at IS NULL AND kernel_id IN ({marks})")
        with self._write() as conn:
            return int(conn.execute(sql, [until, server_id, *kernel_ids]).rowcount)

    def touch_tokens(self, used: Mapping[str, str]) -> None:
        if not used:
            return
        with self._write() as conn:
            conn.executemany("UPDATE tokens SET last_used_at = ? WHERE digest = ?",
                             [(at, digest) for digest, at in used.items()])

    # -- counters --------------------------------------------------------------------------

    def count_hit(self, key: str, window: str, limit: int) -> int | None:
        with self._write() as conn:
            row = conn.execute("SELECT count FROM counters WHERE key = ? AND window = ?",
                               (key, window)).fetchone()
            count = row[0] if row else 0
            if count >= limit:
                return None
            conn.execute("INSERT INTO counters (key, window, count) VALUES (?, ?, 1)"
                         " ON CONFLICT (key, window) DO UPDATE SET count = count + 1",
                         (key, window))
            return int(count + 1)

    def prune_counters(self, before_window: str) -> int:
        with self._write() as conn:
            return int(conn.execute("DELETE FROM counters WHERE window < ?",
                                    (before_window,)).rowcount)

