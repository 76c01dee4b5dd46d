"""The service's store: PostgreSQL through psycopg 3 and a connection pool.

Every public method is one short transaction on a pooled connection (a lone statement runs
in autocommit). ``transaction()`` serialises writers as SQLite's ``BEGIN IMMEDIATE`` does (one
advisory lock per database), and its reads lock the rows they return (``SELECT ... FOR
UPDATE``), so a check and the write that follows are atomic and no update is ever lost. Other
writes of several rows (use counts, token expiries) take the same lock, so writers never
deadlock; single-row writes (counters, new tokens, audit events) do not wait for it.

The change feed is appended just before each commit, under a lock held until the commit, so
feed ids become visible in order: a reader that saw id N has seen every change below it. The
same commit sends ``NOTIFY jupyter_secrets_changes``; :meth:`PostgresStore.watch` and
:meth:`PostgresStore.wait_for_change` let caches in other processes refresh at once instead
of at their next poll, and polling :meth:`changes_since` alone stays correct.

A database that goes away surfaces as ``StoreUnavailable`` (a transaction is all or nothing,
so there is no half write). A pooled connection found dead on its first statement (the
database restarted while it sat idle) is dropped and the statement, or the transaction's
``BEGIN``, sent again on another: the first call after the database returns works, and no
call pays a round trip to check a connection first. Rows and transactions only: rules live in
the services.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg.abc import Params
from psycopg.types.json import Json
from psycopg_pool import ConnectionPool, PoolTimeout

from ..boundary.sharing import SharedWith
from ..crypto import Sealed
from ..errors import ConcurrentChange, Conflict, InvalidInput, SecretsError, StoreUnavailable
from .base import Store, Transaction
from .migrations import POSTGRES_MIGRATIONS, pending
from .pg_listen import Callback, Notifications
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

CHANNEL = "jupyter_secrets_changes"
CHANGES_KEPT = 10_000  # a reader further behind than this reloads everything
# Advisory lock keys, per database ("js" + a letter, so they read in pg_locks).
MIGRATION_LOCK = 0x6A73_6D
WRITER_LOCK = 0x6A73_77
FEED_LOCK = 0x6A73_66
POOL_OPTIONS = {"pool_min_size": int, "pool_max_size": int, "pool_timeout": float}
CONNECT_TIMEOUT_S = 10
#: The pool retries a failed connection with growing delays, one attempt at a time; giving
#: up after this long lets the next call start afresh, so calls work again at most about a
#: second after the database does (psycopg_pool's default, 5 minutes, could leave it waiting
#: minutes).
RECONNECT_GIVE_UP_S = 2.0

_METADATA = (
    "id, name, kind, description, owner, created_at, updated_at, updated_by, version, "
    "allowed_hosts, placements, key_id, last_used_at, use_count, shared_with"
)
_SEALED = f"{_METADATA}, wrapped_key, ciphertext"
_CONNECTION = ("name, preset, base_url, secret, auth, headers, description, owns_secret, "
               "created_at, created_by, updated_at, updated_by, shared_with, env, rate_limit, "
               "daily_quota")
_AUDIT = ("id, time, username, action, secrets, kernel_id, notebook_path, connection, host, "
          "method, path, status, bytes, duration_ms, reason, grant_")
_AUDIT_INSERT = _AUDIT.removeprefix("id, ")
_ISSUED = ("digest, kind, username, created_at, kernel_id, server_id, name, expires_at, "
           "revoked_at, last_used_at")  # the tokens table
_RUNTIME = "id, host, pid, key_ids, key_source, seen_at"
# Another writer held what we needed: the whole transaction was rolled back.
_CONCURRENT = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
_GONE = (psycopg.OperationalError, psycopg.InterfaceError)

T = TypeVar("T")
Row = tuple[Any, ...]
Feed = list[tuple[ChangeKind, str]]
Conn = psycopg.Connection[Row]


@dataclass(frozen=True)
class PostgresURL:
    """A store URL split into what libpq takes, what people may see, and the pool's size."""

    conninfo: str
    location: str
    password: str | None
    pool_min_size: int = 1
    pool_max_size: int = 10
    pool_timeout: float = 5.0

    @classmethod
    def parse(cls, url: str) -> PostgresURL:
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise InvalidInput(f"Not a PostgreSQL URL: use postgresql://user@host:port/db "
                               f"(got a {parts.scheme or 'schemeless'} URL).")
        query = parse_qsl(parts.query, keep_blank_values=True)
        pool: dict[str, Any] = {}
        for key, raw in query:
            if key in POOL_OPTIONS:
                try:
                    pool[key] = POOL_OPTIONS[key](raw)
                except ValueError:
                    raise InvalidInput(f"Store URL option {key} must be a number.") from None
        rest = [(k, v) for k, v in query if k not in POOL_OPTIONS]
        password = unquote(parts.password) if parts.password else None
        password = next((v for k, v in rest if k == "password"), password)
        userinfo, at, hostport = parts.netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        if not any(k == "connect_timeout" for k, _ in rest):
            rest.append(("connect_timeout", str(CONNECT_TIMEOUT_S)))
        shown = [(k, v) for k, v in rest if k not in ("password", "connect_timeout")]
        location = _url(f"{user}@{hostport}" if at and user else hostport, parts.path, shown)
        conninfo = _url(parts.netloc, parts.path, rest)
        return cls(conninfo, location, password or None, **pool)

    def scrub(self, text: str) -> str:
        """Text from libpq with the password (should it ever appear) cut out."""
        return text.replace(self.password, "***") if self.password else text


def _url(netloc: str, path: str, query: list[tuple[str, str]]) -> str:
    """``postgresql://netloc/path?query``, keeping ``//`` when there is no host (a socket)."""
    return f"postgresql://{netloc}{path}" + (f"?{urlencode(query)}" if query else "")


def _where(conditions: dict[str, object | None]) -> tuple[str, list[object]]:
    """AND together the constant SQL fragments whose parameter is given."""
    given = {sql: value for sql, value in conditions.items() if value is not None}
    return " AND ".join(["TRUE", *given]), list(given.values())


def _record(row: Row) -> SecretRecord:
    return SecretRecord(
        id=row[0], name=row[1], kind=row[2], description=row[3], owner=row[4],
        created_at=row[5], updated_at=row[6], updated_by=row[7], version=row[8],
        allowed_hosts=tuple(row[9]), placements=tuple(row[10]), key_id=row[11],
        last_used_at=row[12], use_count=row[13], shared_with=SharedWith.from_json(row[14]),
    )


def _sealed(row: Row) -> tuple[SecretRecord, Sealed]:
    return _record(row), Sealed(row[11], bytes(row[15]), bytes(row[16]))


def _connection(row: Row) -> ConnectionRecord:
    return ConnectionRecord(
        name=row[0], preset=row[1], base_url=row[2], secret=row[3], auth=row[4],
        headers=row[5], description=row[6], owns_secret=row[7], created_at=row[8],
        created_by=row[9], updated_at=row[10], updated_by=row[11],
        shared_with=SharedWith.from_json(row[12]),
        env=json.loads(row[13]) if row[13] is not None else None,
        rate_limit=row[14], daily_quota=row[15],
    )


def _connection_args(record: ConnectionRecord) -> tuple[object, ...]:
    return (record.name, record.preset, record.base_url, record.secret, Json(record.auth),
            Json(record.headers), record.description, record.owns_secret, record.created_at,
            record.created_by, record.updated_at, record.updated_by,
            _shared(record.shared_with), None if record.env is None else json.dumps(record.env),
            record.rate_limit, record.daily_quota)


def _audit(row: Row) -> AuditRecord:
    return AuditRecord(
        id=row[0], time=row[1], user=row[2], action=row[3], secrets=tuple(row[4]),
        kernel_id=row[5], notebook_path=row[6], connection=row[7], host=row[8], method=row[9],
        path=row[10], status=row[11], bytes=row[12], duration_ms=row[13], reason=row[14],
        grant=row[15],
    )


def _audit_args(r: AuditRecord) -> tuple[object, ...]:
    return (r.time, r.user, r.action, list(r.secrets), r.kernel_id, r.notebook_path,
            r.connection, r.host, r.method, r.path, r.status, r.bytes, r.duration_ms, r.reason,
            r.grant)


def _token(row: Row) -> TokenRecord:
    return TokenRecord(
        digest=row[0], kind=row[1], username=row[2], created_at=row[3], kernel_id=row[4],
        server_id=row[5], name=row[6], expires_at=row[7], revoked_at=row[8],
        last_used_at=row[9],
    )


def _shared(shared: SharedWith | None) -> str | None:
    return None if shared is None else shared.dumps()


def _secret_args(record: SecretRecord, sealed: Sealed) -> tuple[object, ...]:
    return (record.id, record.name, record.kind, record.description, record.owner,
            record.created_at, record.updated_at, record.updated_by, record.version,
            list(record.allowed_hosts), list(record.placements), sealed.key_id,
            record.last_used_at, record.use_count, _shared(record.shared_with),
            sealed.wrapped_key, sealed.ciphertext)


_INSERT_SECRET = (f"INSERT INTO secrets ({_SEALED}) VALUES "  # noqa: S608 - constant columns
                  f"({', '.join(['%s'] * 17)})")
_INSERT_CONNECTION = (
    f"INSERT INTO connections ({_CONNECTION}) VALUES ({', '.join(['%s'] * 16)})"  # noqa: S608
)


class PostgresTransaction(Transaction):
    """Runs inside ``PostgresStore.transaction``: the writer lock is held, rows get locked."""

    def __init__(self, conn: Conn, feed: Feed) -> None:
        self.conn = conn
        self.feed = feed

    def get_secret(self, name: str) -> tuple[SecretRecord, Sealed] | None:
        row = self.conn.execute(
            f"SELECT {_SEALED} FROM secrets WHERE name = %s FOR UPDATE", (name,)  # noqa: S608
        ).fetchone()
        return _sealed(row) if row else None

    def get_secrets(self, names: Sequence[str]) -> dict[str, tuple[SecretRecord, Sealed]]:
        if not names:
            return {}
        rows = self.conn.execute(
            f"SELECT {_SEALED} FROM secrets WHERE name = ANY(%s)"  # noqa: S608
            " ORDER BY name FOR UPDATE", (list(names),)  # one lock order: no deadlock
        ).fetchall()
        return {record.name: (record, sealed) for record, sealed in map(_sealed, rows)}

    def insert_secret(self, record: SecretRecord, sealed: Sealed) -> None:
        self.conn.execute(_INSERT_SECRET, _secret_args(record, sealed))
        self.feed.append(("secret", record.name))

    def update_secret(
        self, record: SecretRecord, sealed: Sealed | None, *, expected_version: int
    ) -> None:
        columns = ("description = %s, updated_at = %s, updated_by = %s, version = %s,"
                   " allowed_hosts = %s, placements = %s, shared_with = %s")
        args: list[object] = [record.description, record.updated_at, record.updated_by,
                              record.version, list(record.allowed_hosts),
                              list(record.placements), _shared(record.shared_with)]
        if sealed is not None:
            columns += ", key_id = %s, wrapped_key = %s, ciphertext = %s"
            args += [sealed.key_id, sealed.wrapped_key, sealed.ciphertext]
        cursor = self.conn.execute(
            f"UPDATE secrets SET {columns} WHERE id = %s AND version = %s",  # noqa: S608
            [*args, record.id, expected_version],
        )
        if cursor.rowcount != 1:
            raise ConcurrentChange(f"{record.name} was changed by another writer; try again.")
        self.feed.append(("secret", record.name))

    def delete_secret(self, secret_id: str) -> None:
        row = self.conn.execute("DELETE FROM secrets WHERE id = %s RETURNING name",
                                (secret_id,)).fetchone()
        if row is not None:
            self.feed.append(("secret", row[0]))

    def sealed_rows(self) -> list[tuple[SecretRecord, Sealed]]:
        rows = self.conn.execute(
            f"SELECT {_SEALED} FROM secrets ORDER BY name FOR UPDATE"  # noqa: S608
        ).fetchall()
        return [_sealed(r) for r in rows]

    def set_sealed(self, secret_id: str, sealed: Sealed) -> None:
        row = self.conn.execute(
            "UPDATE secrets SET key_id = %s, wrapped_key = %s, ciphertext = %s WHERE id = %s"
            " RETURNING name",
            (sealed.key_id, sealed.wrapped_key, sealed.ciphertext, secret_id),
        ).fetchone()
        if row is not None:
            self.feed.append(("secret", row[0]))

    def get_connection(self, name: str) -> ConnectionRecord | None:
        row = self.conn.execute(
            f"SELECT {_CONNECTION} FROM connections WHERE name = %s FOR UPDATE",  # noqa: S608
            (name,),
        ).fetchone()
        return _connection(row) if row else None

    def list_connections(self) -> list[ConnectionRecord]:
        rows = self.conn.execute(
            f"SELECT {_CONNECTION} FROM connections ORDER BY name"  # noqa: S608
        ).fetchall()
        return [_connection(r) for r in rows]

    def put_connection(self, record: ConnectionRecord) -> None:
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _CONNECTION.split(", ")[1:])
        self.conn.execute(
            f"{_INSERT_CONNECTION} ON CONFLICT (name) DO UPDATE SET {updates}",
            _connection_args(record),
        )
        self.feed.append(("connection", record.name))

    def delete_connection(self, name: str) -> None:
        self.conn.execute("DELETE FROM connections WHERE name = %s", (name,))
        self.feed.append(("connection", name))


class PostgresStore(Store):
    def __init__(self, url: PostgresURL) -> None:
        self.url = url
        self.location = url.location
        self._notifications: Notifications | None = None
        self._listener_lock = threading.Lock()
        self._closed = False
        self._migrate()
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url.conninfo, min_size=url.pool_min_size, max_size=url.pool_max_size,
            timeout=url.pool_timeout, open=False, kwargs={"autocommit": True},
            name="jupyter-secrets", reconnect_timeout=RECONNECT_GIVE_UP_S,
        )
        self._pool.open()

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        return cls(PostgresURL.parse(url))

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r})"

    # -- connections and errors ------------------------------------------------------------

    def _unavailable(self, error: BaseException, *, committing: bool = False) -> StoreUnavailable:
        reason = self.url.scrub(str(error).strip().splitlines()[0] if str(error).strip()
                                else type(error).__name__)
        outcome = ("the commit's outcome is unknown (the change was saved whole or not at "
                   "all): check, then try again" if committing
                   else "nothing was written; try again")
        return StoreUnavailable(f"The secrets store {self.location} is unreachable ({reason}); "
                                f"{outcome}.")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Database failures as the errors the rest of the code knows."""
        try:
            yield
        except _CONCURRENT as error:
            raise ConcurrentChange("Another writer held the same rows; nothing was written, "
                                   "try again.") from error
        except _GONE as error:
            raise self._unavailable(error) from error

    def _lend(self) -> Conn:
        try:
            return self._pool.getconn()
        except PoolTimeout as timeout:
            raise self._no_connection() from timeout
        except _GONE as error:  # the pool was closed
            raise self._unavailable(error) from error

    def _no_connection(self) -> StoreUnavailable:
        """Why the pool had no connection in time: the database's own answer, if it has one."""
        try:
            with psycopg.connect(self.url.conninfo, connect_timeout=2):
                pass
        except psycopg.Error as error:
            return self._unavailable(error)
        return StoreUnavailable(
            f"The secrets store {self.location} answers, but no pooled connection came free "
            f"within {self.url.pool_timeout:g} s (at most {self.url.pool_max_size}): it may "
            "have just come back, or the pool is too small for the load (pool_max_size in the "
            "store URL). Nothing was written; try again."
        )

    def _run(self, work: Callable[[Conn], T]) -> T:
        """``work`` (one statement) on a pooled connection in autocommit.

        A connection that turns out dead (the database restarted while it sat in the pool) is
        dropped and ``work`` runs again on another, until the pool has a live one or says it
        cannot get one in time.
        """
        for attempt in itertools.count():
            conn = self._lend()
            try:
                with self._errors():
                    try:
                        return work(conn)
                    except _GONE:
                        if not (conn.broken and attempt < self.url.pool_max_size):
                            raise
            finally:
                self._pool.putconn(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    def _all(self, query: str, args: Params = ()) -> list[Row]:
        return self._run(lambda conn: conn.execute(query, args).fetchall())

    def _one(self, query: str, args: Params = ()) -> Row | None:
        return self._run(lambda conn: conn.execute(query, args).fetchone())

    def _count(self, query: str, args: Params = ()) -> int:
        """Run a write; how many rows it changed."""
        return self._run(lambda conn: conn.execute(query, args).rowcount)

    def _begin(self, serialize: bool) -> Conn:
        """A pooled connection inside ``BEGIN`` (and the writer lock, when ``serialize``)."""
        for attempt in itertools.count():
            conn = self._lend()
            try:
                with self._errors():
                    if serialize:
                        with conn.pipeline():
                            conn.execute("BEGIN")
                            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK,))
                    else:
                        conn.execute("BEGIN")
                    return conn
            except StoreUnavailable:
                self._pool.putconn(conn)
                if not (conn.broken and attempt < self.url.pool_max_size):
                    raise
            except BaseException:
                self._pool.putconn(conn)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _write(self, *, serialize: bool = False) -> Iterator[tuple[Conn, Feed]]:
        """One transaction; what it appends to the feed is published just before it commits.

        ``serialize`` takes the writer lock first: one such transaction at a time per database.
        """
        conn = self._begin(serialize)
        try:
            with self._errors():
                feed: Feed = []
                try:
                    yield conn, feed
                    _publish(conn, feed)
                except BaseException:
                    with contextlib.suppress(psycopg.Error):
                        conn.execute("ROLLBACK")
                    raise
                try:
                    conn.execute("COMMIT")
                except _GONE as error:
                    raise self._unavailable(error, committing=True) from error
        finally:
            self._pool.putconn(conn)

    def _migrate(self) -> None:
        """Apply pending schema steps in one transaction; concurrent openers wait their turn."""
        try:
            conn = psycopg.connect(self.url.conninfo, autocommit=True)
        except psycopg.ProgrammingError as error:
            reason = self.url.scrub(str(error).strip().rstrip("."))
            raise InvalidInput(f"The store URL {self.location} is not a valid PostgreSQL URL: "
                               f"{reason}.") from None
        except _GONE as error:
            raise self._unavailable(error) from error
        with conn, self._errors(), conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                         "version INTEGER PRIMARY KEY,"
                         " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
            current = int(row[0]) if row else 0
            latest = POSTGRES_MIGRATIONS[-1][0]
            if current > latest:
                raise SecretsError(
                    f"The store {self.location} has schema version {current}, newer than this "
                    f"jupyter-secrets knows ({latest}): upgrade jupyter-secrets to use it."
                )
            for version, script in pending(POSTGRES_MIGRATIONS, current):
                for statement in script:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._write(serialize=True) as (conn, feed):
            yield PostgresTransaction(conn, feed)

    def changes_since(self, marker: int | None) -> Changes:
        if marker is None:
            row = self._one("SELECT COALESCE(MAX(id), 0) FROM changes")
            return Changes(int(row[0]) if row else 0, frozenset())
        # One statement, one snapshot: the bounds and the rows agree.
        rows = self._all(
            "WITH bounds AS (SELECT COALESCE(MAX(id), 0) AS last, MIN(id) AS oldest"
            " FROM changes)"
            " SELECT b.last, b.oldest, c.kind, c.name FROM bounds b"
            " LEFT JOIN changes c ON c.id > %s AND c.id <= b.last", (marker,)
        )
        end, oldest = int(rows[0][0]), rows[0][1]
        if marker == end:
            return Changes(end, frozenset())
        if marker > end or oldest is None or marker < oldest - 1:
            return Changes(end, None)  # pruned past the marker, or another database
        return Changes(end, frozenset((r[2], r[3]) for r in rows if r[2] is not None))

    def watch(self, callback: Callback) -> Callback:
        """Call ``callback`` after every change any process commits, and whenever the listener
        (re)connects, since changes may have been missed meanwhile; it runs on a listener
        thread and should just schedule a :meth:`changes_since`. Returns an unsubscribe."""
        return self._listener().subscribe(callback)

    def wait_for_change(self, marker: int, timeout: float) -> Changes:
        """Block until the feed moves past ``marker`` (a commit in any process wakes this at
        once through ``NOTIFY``) or ``timeout`` seconds pass; return what changed (nothing
        touched on a timeout, the marker unchanged)."""
        listener = self._listener()
        seen = listener.generation
        deadline = time.monotonic() + timeout
        while True:
            changes = self.changes_since(marker)
            if changes.marker != marker or changes.touched:
                return changes
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return changes
            woke = listener.wait(seen, remaining)
            if woke == seen:
                return changes
            seen = woke

    def _listener(self) -> Notifications:
        with self._listener_lock:
            if self._closed:
                raise StoreUnavailable(f"The store {self.location} was closed.")
            if self._notifications is None:
                self._notifications = Notifications(self.url.conninfo, CHANNEL, {})
            return self._notifications

    def close(self) -> None:
        with self._listener_lock:
            if self._closed:
                return
            self._closed = True
            notifications = self._notifications
        if notifications is not None:
            notifications.close()
        self._pool.close()

    # -- secrets ---------------------------------------------------------------------------

    def list_secrets(
        self, *, owner: str | None = None, kind: Kind | None = None
    ) -> list[SecretRecord]:
        where, args = _where({"owner = %s": owner, "kind = %s": kind})
        query = f"SELECT {_METADATA} FROM secrets WHERE {where} ORDER BY name"  # noqa: S608
        return [_record(r) for r in self._all(query, args)]

    def get_secret(self, name: str) -> SecretRecord | None:
        found = self.get_sealed(name)
        return found[0] if found else None

    def get_sealed(self, name: str) -> tuple[SecretRecord, Sealed] | None:
        row = self._one(f"SELECT {_SEALED} FROM secrets WHERE name = %s", (name,))  # noqa: S608
        return _sealed(row) if row else None

    def key_ids_in_use(self) -> set[str]:
        return {r[0] for r in self._all("SELECT DISTINCT key_id FROM secrets")}

    def record_use(self, counts: Mapping[str, int], at: str) -> None:
        if not counts:
            return
        names = sorted(counts)
        self._locking_update(
            "UPDATE secrets s SET last_used_at = %s, use_count = s.use_count + u.n"
            " FROM unnest(%s::text[], %s::bigint[]) AS u(name, n) WHERE s.name = u.name",
            (at, names, [counts[n] for n in names]),
        )

    def _locking_update(self, statement: str, args: Params) -> int:
        """An update of many rows, under the writer lock: rows locked in no particular order
        by two writers at once could deadlock, so every such writer takes its turn."""
        with self._write(serialize=True) as (conn, _):
            return conn.execute(statement, args).rowcount

    # -- connections -----------------------------------------------------------------------

    def list_connections(self) -> list[ConnectionRecord]:
        rows = self._all(f"SELECT {_CONNECTION} FROM connections ORDER BY name")  # noqa: S608
        return [_connection(r) for r in rows]

    def get_connection(self, name: str) -> ConnectionRecord | None:
        row = self._one(
            f"SELECT {_CONNECTION} FROM connections WHERE name = %s", (name,)  # noqa: S608
        )
        return _connection(row) if row else None

    # -- audit -----------------------------------------------------------------------------

    def append_audit(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        with self._write() as (conn, _), conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO audit ({_AUDIT_INSERT}) VALUES ({', '.join(['%s'] * 15)})",  # noqa: S608
                [_audit_args(r) for r in records],
            )

    def query_audit(self, query: AuditFilter = ALL_EVENTS) -> list[AuditRecord]:
        where, args = _where({
            "secrets @> ARRAY[%s]::text[]": query.secret,
            "username = %s": query.user,
            "time >= %s": query.since,
            "action = %s": query.action,
            "id < %s": query.before_id,
        })
        sql = f"SELECT {_AUDIT} FROM audit WHERE {where} ORDER BY id DESC LIMIT %s"  # noqa: S608
        return [_audit(r) for r in self._all(sql, [*args, query.limit])]

    def prune_audit(self, older_than: str) -> int:
        return self._count("DELETE FROM audit WHERE time < %s", (older_than,))

    # -- running servers -------------------------------------------------------------------

    def announce_runtime(self, record: RuntimeRecord) -> None:
        self._count(
            f"INSERT INTO runtimes ({_RUNTIME}) VALUES (%s, %s, %s, %s, %s, %s)"  # noqa: S608
            " ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid,"
            " key_ids = EXCLUDED.key_ids, key_source = EXCLUDED.key_source,"
            " seen_at = EXCLUDED.seen_at",
            (record.id, record.host, record.pid, list(record.key_ids), record.key_source,
             record.seen_at),
        )

    def runtimes_seen_since(self, since: str) -> list[RuntimeRecord]:
        rows = self._all(
            f"SELECT {_RUNTIME} FROM runtimes WHERE seen_at >= %s ORDER BY id",  # noqa: S608
            (since,),
        )
        return [RuntimeRecord(r[0], r[1], r[2], tuple(r[3]), r[4], r[5]) for r in rows]

    def forget_runtime(self, runtime_id: str) -> None:
        self._count("DELETE FROM runtimes WHERE id = %s", (runtime_id,))

    # -- tokens ----------------------------------------------------------------------------

    def put_token(self, record: TokenRecord) -> None:
        with self._write() as (conn, feed):
            conn.execute(
                f"INSERT INTO tokens ({_ISSUED}) VALUES ({', '.join(['%s'] * 10)})",  # noqa: S608
                (record.digest, record.kind, record.username, record.created_at,
                 record.kernel_id, record.server_id, record.name, record.expires_at,
                 record.revoked_at, record.last_used_at),
            )
            feed.append(("token", record.digest))

    def get_token(self, digest: str) -> TokenRecord | None:
        row = self._one(f"SELECT {_ISSUED} FROM tokens WHERE digest = %s", (digest,))  # noqa: S608
        return _token(row) if row else None

    def list_tokens(
        self, *, kind: TokenKind | None = None, username: str | None = None
    ) -> list[TokenRecord]:
        where, args = _where({"kind = %s": kind, "username = %s": username})
        sql = f"SELECT {_ISSUED} FROM tokens WHERE {where} ORDER BY created_at DESC"  # noqa: S608
        return [_token(r) for r in self._all(sql, args)]

    def revoke_tokens(
        self, at: str, *, digest: str | None = None, kernel_id: str | None = None,
        server_id: str | None = None,
    ) -> list[str]:
        where, args = _where({"digest = %s": digest, "kernel_id = %s": kernel_id,
                              "server_id = %s": server_id})
        if not args:
            raise ValueError("revoke_tokens needs a filter")
        sql = (f"UPDATE tokens SET revoked_at = %s WHERE {where} AND revoked_at IS NULL"  # noqa: S608
               " RETURNING digest")
        with self._write(serialize=True) as (conn, feed):
            digests = [r[0] for r in conn.execute(sql, [at, *args]).fetchall()]
            feed.extend(("token", d) for d in digests)
        return digests

    def extend_tokens(self, server_id: str, kernel_ids: Sequence[str], until: str) -> int:
        if not kernel_ids:
            return 0
        return self._locking_update(
            "UPDATE tokens SET expires_at = %s WHERE server_id = %s AND kind = 'kernel'"
            " AND revoked_at IS NULL AND kernel_id = ANY(%s)",
            (until, server_id, list(kernel_ids)),
        )

    def touch_tokens(self, used: Mapping[str, str]) -> None:
        if not used:
            return
        digests = sorted(used)
        self._locking_update(
            "UPDATE tokens t SET last_used_at = u.at"
            " FROM unnest(%s::text[], %s::text[]) AS u(digest, at) WHERE t.digest = u.digest",
            (digests, [used[d] for d in digests]),
        )

    # -- counters --------------------------------------------------------------------------

    def count_hit(self, key: str, window: str, limit: int) -> int | None:
        if limit <= 0:
            return None
        row = self._one(
            'INSERT INTO counters (key, "window", count) VALUES (%s, %s, 1)'
            ' ON CONFLICT (key, "window") DO UPDATE SET count = counters.count + 1'
            " WHERE counters.count < %s RETURNING count",
            (key, window, limit),
        )
        return int(row[0]) if row else None

    def prune_counters(self, before_window: str) -> int:
        return self._count('DELETE FROM counters WHERE "window" < %s', (before_window,))

    # -- migration from another store ------------------------------------------------------

    def import_rows(
        self,
        secrets: Sequence[tuple[SecretRecord, Sealed]],
        connections: Sequence[ConnectionRecord],
        audit: Sequence[AuditRecord],
        *,
        merge: bool,
    ) -> None:
        """Insert another store's rows as they are (versions, owners, times, use counts), in
        one transaction. Refuses a store that already holds secrets or connections unless
        ``merge``, and, merging, any name both hold: nothing is written then."""
        with self._write(serialize=True) as (conn, feed):
            held = {r[0] for r in conn.execute("SELECT name FROM secrets")}
            held_connections = {r[0] for r in conn.execute("SELECT name FROM connections")}
            if (held or held_connections) and not merge:
                raise Conflict(
                    f"{self.location} already holds {len(held)} secret(s) and "
                    f"{len(held_connections)} connection(s); nothing was copied. Add --merge to "
                    "add these to them."
                )
            clash = sorted(held & {r.name for r, _ in secrets})
            clash_connections = sorted(held_connections & {c.name for c in connections})
            if clash or clash_connections:
                both = ", ".join([*clash, *(f"connection {c}" for c in clash_connections)])
                raise Conflict(f"Both stores hold {both}; nothing was copied. Rename or delete "
                               "them on one side first.")
            with conn.cursor() as cursor:
                if secrets:
                    cursor.executemany(_INSERT_SECRET, [_secret_args(r, s) for r, s in secrets])
                if connections:
                    cursor.executemany(_INSERT_CONNECTION,
                                       [_connection_args(c) for c in connections])
                if audit:
                    cursor.executemany(
                        f"INSERT INTO audit ({_AUDIT_INSERT}) VALUES "  # noqa: S608
                        f"({', '.join(['%s'] * 15)})", [_audit_args(r) for r in audit])
            feed.extend(("secret", r.name) for r, _ in secrets)
            feed.extend(("connection", c.name) for c in connections)


def _publish(conn: Conn, feed: Feed) -> None:
    """Append to the change feed and notify listeners, in the transaction about to commit.

    The feed lock is held until the commit, so ids are handed out in commit order; the
    ``NOTIFY`` is delivered by PostgreSQL when (and only if) the transaction commits.
    """
    if not feed:
        return
    touched = list(dict.fromkeys(feed))
    with conn.pipeline():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (FEED_LOCK,))
        conn.execute("INSERT INTO changes (kind, name)"
                     " SELECT * FROM unnest(%s::text[], %s::text[])",
                     ([k for k, _ in touched], [n for _, n in touched]))
        conn.execute("DELETE FROM changes WHERE id <= (SELECT MAX(id) FROM changes) - %s",
                     (CHANGES_KEPT,))
        conn.execute(f"NOTIFY {CHANNEL}")

