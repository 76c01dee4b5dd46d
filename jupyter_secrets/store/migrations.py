"""Schema versions, per backend: each step runs once, in order, inside one transaction.

A store records the versions it has applied in ``schema_version``. Stores made before that
table existed (SQLite, versions 1-2) recorded theirs in ``PRAGMA user_version``.

PostgreSQL started after SQLite's sixth step, so its first step is SQLite's schema as of
then, column for column (lists as ``TEXT[]``, JSON objects as ``JSON``, which keeps key
order). Text that is compared or sorted uses the ``"C"`` collation, so names sort and ISO
times compare byte by byte as in SQLite, whatever the database's locale.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

Migration = tuple[int, Sequence[str]]

SQLITE_MIGRATIONS: list[Migration] = [
    (1, [
        """CREATE TABLE IF NOT EXISTS secrets (
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
        )""",
        """CREATE TABLE IF NOT EXISTS connections (
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
        )""",
    ]),
    (2, [
        """CREATE TABLE IF NOT EXISTS audit (
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
        )""",
        "CREATE INDEX IF NOT EXISTS audit_time ON audit (time)",
        "CREATE INDEX IF NOT EXISTS audit_user ON audit (username, id)",
    ]),
    (3, [
        # The change feed: every write appends what it touched, so caches in this and other
        # processes (the CLI, service replicas) update just those entries.
        """CREATE TABLE changes (
            id    INTEGER PRIMARY KEY AUTOINCREMENT,
            kind  TEXT NOT NULL,
            name  TEXT NOT NULL
        )""",
    ]),
    (4, [
        # Where a value may be placed in a request: headers only, unless a person allows more.
        # A connection whose auth scheme is the query string keeps working.
        """ALTER TABLE secrets ADD COLUMN placements TEXT NOT NULL DEFAULT '["header"]'""",
        """UPDATE secrets SET placements = '["header", "query"]' WHERE name IN (
            SELECT secret FROM connections WHERE json_extract(auth, '$.scheme') = 'query')""",
    ]),
    (5, [
        # Running servers say which master keys they hold, so a rotation can check first.
        """CREATE TABLE runtimes (
            id       TEXT PRIMARY KEY,
            host     TEXT NOT NULL,
            pid      INTEGER NOT NULL,
            key_ids  TEXT NOT NULL,
            key_source TEXT NOT NULL,
            seen_at  TEXT NOT NULL
        )""",
    ]),
    (6, [
        # Credentials the service issues (digests only) and shared fixed-window counters.
        """CREATE TABLE tokens (
            digest       TEXT PRIMARY KEY,
            kind         TEXT NOT NULL CHECK (kind IN ('kernel', 'server', 'run')),
            username     TEXT NOT NULL,
            created_at   TEXT NOT NULL,
            kernel_id    TEXT,
            server_id    TEXT,
            name         TEXT,
            expires_at   TEXT,
            revoked_at   TEXT,
            last_used_at TEXT
        )""",
        "CREATE INDEX tokens_kernel ON tokens (kernel_id)",
        "CREATE INDEX tokens_server ON tokens (server_id)",
        """CREATE TABLE counters (
            key     TEXT NOT NULL,
            window  TEXT NOT NULL,
            count   INTEGER NOT NULL,
            PRIMARY KEY (key, window)
        )""",
    ]),
    (7, [
        # Who may use a secret or connection (NULL: everyone), and what let a call through.
        "ALTER TABLE secrets ADD COLUMN shared_with TEXT",
        "ALTER TABLE connections ADD COLUMN shared_with TEXT",
        "ALTER TABLE audit ADD COLUMN grant_ TEXT",
    ]),
    (8, [
        # Environment variables a connection exports to kernels (NULL: none).
        "ALTER TABLE connections ADD COLUMN env TEXT",
    ]),
    (9, [
        # Calls per user per minute and per day through a connection (NULL: no limit).
        "ALTER TABLE connections ADD COLUMN rate_limit INTEGER",
        "ALTER TABLE connections ADD COLUMN daily_quota INTEGER",
    ]),
]


_T = 'TEXT COLLATE "C"'

POSTGRES_MIGRATIONS: list[Migration] = [
    (1, [
        f"""CREATE TABLE secrets (
            id            {_T} PRIMARY KEY,
            name          {_T} NOT NULL UNIQUE,
            kind          {_T} NOT NULL CHECK (kind IN ('user', 'system')),
            description   TEXT NOT NULL DEFAULT '',
            owner         {_T} NOT NULL,
            created_at    {_T} NOT NULL,
            updated_at    {_T} NOT NULL,
            updated_by    {_T} NOT NULL,
            version       INTEGER NOT NULL CHECK (version >= 1),
            allowed_hosts TEXT[] NOT NULL DEFAULT '{{}}',
            placements    TEXT[] NOT NULL DEFAULT '{{header}}',
            key_id        {_T} NOT NULL,
            wrapped_key   BYTEA NOT NULL,
            ciphertext    BYTEA NOT NULL,
            last_used_at  {_T},
            use_count     BIGINT NOT NULL DEFAULT 0
        )""",
        f"""CREATE TABLE connections (
            name          {_T} PRIMARY KEY,
            preset        {_T} NOT NULL,
            base_url      TEXT NOT NULL,
            secret        {_T},
            auth          JSON NOT NULL,
            headers       JSON NOT NULL,
            description   TEXT NOT NULL DEFAULT '',
            owns_secret   BOOLEAN NOT NULL DEFAULT FALSE,
            created_at    {_T} NOT NULL,
            created_by    {_T} NOT NULL,
            updated_at    {_T} NOT NULL,
            updated_by    {_T} NOT NULL
        )""",
        f"""CREATE TABLE audit (
            id            BIGSERIAL PRIMARY KEY,  -- never reused: ids page the log
            time          {_T} NOT NULL,
            username      {_T} NOT NULL,
            action        {_T} NOT NULL,
            secrets       TEXT[] NOT NULL DEFAULT '{{}}',
            kernel_id     {_T},
            notebook_path TEXT,
            connection    {_T},
            host          TEXT,
            method        TEXT,
            path          TEXT,
            status        INTEGER,
            bytes         BIGINT,
            duration_ms   DOUBLE PRECISION,
            reason        TEXT
        )""",
        "CREATE INDEX audit_time ON audit (time)",
        "CREATE INDEX audit_user ON audit (username, id)",
        "CREATE INDEX audit_secrets ON audit USING GIN (secrets)",
        # The change feed; ids are handed out under a lock at commit, so they commit in order.
        f"""CREATE TABLE changes (
            id    BIGSERIAL PRIMARY KEY,
            kind  {_T} NOT NULL,
            name  {_T} NOT NULL
        )""",
        f"""CREATE TABLE runtimes (
            id         {_T} PRIMARY KEY,
            host       TEXT NOT NULL,
            pid        INTEGER NOT NULL,
            key_ids    TEXT[] NOT NULL,
            key_source TEXT NOT NULL,
            seen_at    {_T} NOT NULL
        )""",
        f"""CREATE TABLE tokens (
            digest       {_T} PRIMARY KEY,
            kind         {_T} NOT NULL CHECK (kind IN ('kernel', 'server', 'run')),
            username     {_T} NOT NULL,
            created_at   {_T} NOT NULL,
            kernel_id    {_T},
            server_id    {_T},
            name         {_T},
            expires_at   {_T},
            revoked_at   {_T},
            last_used_at {_T}
        )""",
        "CREATE INDEX tokens_kernel ON tokens (kernel_id)",
        "CREATE INDEX tokens_server ON tokens (server_id)",
        f"""CREATE TABLE counters (
            key      {_T} NOT NULL,
            "window" {_T} NOT NULL,
            count    INTEGER NOT NULL,
            PRIMARY KEY (key, "window")
        )""",
    ]),
    (2, [
        # Who may use a secret or connection (NULL: everyone), and what let a call through.
        "ALTER TABLE secrets ADD COLUMN shared_with TEXT",
        "ALTER TABLE connections ADD COLUMN shared_with TEXT",
        "ALTER TABLE audit ADD COLUMN grant_ TEXT",
    ]),
    (3, [
        "ALTER TABLE connections ADD COLUMN env TEXT",
    ]),
    (4, [
        "ALTER TABLE connections ADD COLUMN rate_limit INTEGER",
        "ALTER TABLE connections ADD COLUMN daily_quota INTEGER",
    ]),
]


def pending(migrations: Sequence[Migration], current: int) -> Iterator[Migration]:
    """The steps after ``current``, in order."""
    for version, script in migrations:
        if version > current:
            yield version, script
