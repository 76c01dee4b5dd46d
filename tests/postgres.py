"""A private PostgreSQL cluster for the tests: one per session, a fresh database per test.

PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` system user
(through ``runuser``), in a temp dir that user owns, listening on a free loopback port and a
socket in that dir. It is stopped and removed when the session ends. Debian's server binaries
are required (``make postgres-deps`` installs them; CI does): without them the fixture fails
with the command to run, it never skips. A cluster whose session was killed before its
teardown is stopped and removed by the next session.

The store connects as ``jsecrets``, an ordinary role that owns each test database, with a
password full of URL-special characters: the store must quote it and never show it.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

BINDIR_ENV = "JUPYTER_SECRETS_PG_BINDIR"
INSTALL_HINT = (
    "PostgreSQL's server binaries (initdb, pg_ctl) were not found in "
    "/usr/lib/postgresql/<version>/bin. Install them with `make postgres-deps` (as root it runs "
    f"apt-get install -y postgresql), or set {BINDIR_ENV} to the folder that holds them."
)
APP_USER = "jsecrets"
PREFIX = "jsecrets-pg-"


def find_bindir() -> Path | None:
    """The newest Debian PostgreSQL ``bin`` folder (or ``$JUPYTER_SECRETS_PG_BINDIR``)."""
    if os.environ.get(BINDIR_ENV):
        candidates = [Path(os.environ[BINDIR_ENV])]
    else:
        def version(path: Path) -> int:
            return int(path.parent.name) if path.parent.name.isdigit() else 0

        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresCluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                self.owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("There is no postgres system user to run the test cluster as. "
                            + INSTALL_HINT, pytrace=False)
        else:
            self.owner = pwd.getpwuid(os.geteuid())
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        (self.root / "session.pid").write_text(str(os.getpid()))
        os.chown(self.root, self.owner.pw_uid, self.owner.pw_gid)
        self.root.chmod(0o700)
        self.data = self.root / "data"
        self.logfile = self.root / "server.log"
        self.port = free_port()
        # URL-special characters on purpose: the store must quote the password, never show it.
        self.password = f"p@ss:w/rd?#%{secrets.token_hex(8)}"
        self.running = False

    # -- processes -------------------------------------------------------------------------

    def run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """One of the cluster's programs, as the cluster's owner."""
        command = [str(self.bindir / tool), *args]
        if self.as_root:
            command = ["runuser", "-u", self.owner.pw_name, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                cwd=self.root, check=False)
        if check and result.returncode != 0:
            log = self.logfile.read_text() if self.logfile.exists() else ""
            pytest.fail(f"{tool} {' '.join(args)} failed ({result.returncode}):\n"
                        f"{result.stdout}\n{result.stderr}\n{log[-3000:]}", pytrace=False)
        return result

    def init(self) -> None:
        pwfile = self.root / "superuser.pw"
        pwfile.write_text(secrets.token_hex(16) + "\n")
        os.chown(pwfile, self.owner.pw_uid, self.owner.pw_gid)
        pwfile.chmod(0o600)
        self.run("initdb", "-D", str(self.data), "-U", "postgres", f"--pwfile={pwfile}",
                 "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                 "--locale=C.UTF-8")
        pwfile.unlink()

    def start(self) -> None:
        options = " ".join([
            f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.root}",
            # Throwaway data: skip the disk flushes.
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
            "-c max_connections=200",
        ])
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-w", "-t", "60",
                 "-o", options, "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session (clients see the server go); ``immediate`` crashes."""
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def remove(self) -> None:
        if self.running:
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop",
                     check=False)
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases -------------------------------------------------------------------------

    @contextmanager
    def admin(self, dbname: str = "postgres") -> Iterator[psycopg.Connection]:
        """A superuser connection over the cluster's socket (trusted locally)."""
        with psycopg.connect(host=str(self.root), port=self.port, user="postgres",
                             dbname=dbname, autocommit=True) as conn:
            yield conn

    def create_role(self) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(APP_USER), sql.Literal(self.password)))

    def create_database(self, name: str | None = None, *, icu_locale: str | None = None) -> str:
        """A new empty database owned by the app role; returns its store URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        statement = sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(name), sql.Identifier(APP_USER))
        if icu_locale:
            statement += sql.SQL(" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE {}").format(
                sql.Literal(icu_locale))
        with self.admin() as conn:
            conn.execute(statement)
        return self.url(name)

    def url(self, dbname: str, *, password: bool = True) -> str:
        """The store URL of a database; without the password, libpq takes it from PGPASSWORD."""
        secret = f":{quote(self.password, safe='')}" if password else ""
        return f"postgresql://{APP_USER}{secret}@127.0.0.1:{self.port}/{dbname}"

    @staticmethod
    def dbname(url: str) -> str:
        match = re.search(r"/([A-Za-z0-9_]+)(\?|$)", url)
        assert match, url
        return match.group(1)

    def dump(self, dbname: str) -> str:
        """``pg_dump`` of a database as plain SQL (bytea as hex), run as the cluster's owner."""
        return self.run("pg_dump", "-h", str(self.root), "-p", str(self.port), "-U", "postgres",
                        dbname).stdout


def reap_orphans(bindir: Path) -> None:
    """Stop and remove clusters left by test sessions that died (killed before teardown)."""
    for root in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            pid = int((root / "session.pid").read_text())
            os.kill(pid, 0)
            continue  # its session still runs
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue  # not ours to judge
        if (root / "data" / "postmaster.pid").exists():
            command = [str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate",
                       "-w", "stop"]
            if os.geteuid() == 0:
                command = ["runuser", "-u", root.owner(), "--", *command]
            subprocess.run(command, capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    bindir = find_bindir()
    if bindir is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    reap_orphans(bindir)
    cluster = PostgresCluster(bindir)
    try:
        cluster.init()
        cluster.start()
        cluster.create_role()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A fresh, empty database of the session's cluster, as a store URL."""
    return postgres_cluster.create_database()
