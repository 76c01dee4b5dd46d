"""One object wiring everything below the apps: built once from the settings.

The server extension, the secrets service and the CLI all call :func:`build_runtime`, so they
open the same store with the same keys and get the same services. Apps keep the runtime under
one key (``RUNTIME_KEY`` in tornado's settings) and reach it through one typed property.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .egress.http1 import build_client
from .egress.outbound import Egress
from .egress.redaction import ValueIndex
from .keys import KeySource
from .protocol import KEY_ENV
from .services.audit import AuditLog, PathLookup
from .services.connections import ConnectionsService
from .services.limits import RateLimits
from .services.secrets import SecretsService
from .services.tokens import TokenService
from .settings import SecretsSettings
from .store import Store, open_store
from .store.records import Changes, RuntimeRecord, now_iso

RUNTIME_KEY = "jupyter_secrets_runtime"
#: How often a running server says which keys it holds, and how long that counts as live.
ANNOUNCE_EVERY_S = 30.0
LIVE_FOR = timedelta(seconds=90)


@dataclass(eq=False)
class SecretsRuntime:
    settings: SecretsSettings
    secrets: SecretsService
    connections: ConnectionsService
    audit: AuditLog
    values: ValueIndex
    tokens: TokenService
    limits: RateLimits
    egress: Egress
    keys: KeySource
    log: logging.Logger
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: Kernel ids this process started and that still run (the server app sets it).
    live_kernels: Callable[[], list[str]] | None = None
    _marker: int | None = None
    _feed_listeners: list[Callable[[Changes], None]] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"SecretsRuntime(store={self.secrets.store!r})"

    # -- keys ------------------------------------------------------------------------------

    def reload_keys(self) -> bool:
        """Pick up a rewritten key file (a rotation in another process); True if it changed."""
        keyring = self.keys.reload_if_changed(self.log)
        if keyring is None:
            return False
        self.secrets.keyring = keyring
        return True

    def announce(self) -> None:
        """Record that this process is running and which master keys it holds."""
        self.secrets.store.announce_runtime(RuntimeRecord(
            self.id, socket.gethostname(), os.getpid(), tuple(self.secrets.keyring.key_ids),
            self.keys.source_label(), now_iso()))

    def withdraw(self) -> None:
        self.secrets.store.forget_runtime(self.id)

    # -- other processes' writes -----------------------------------------------------------

    def on_feed(self, listener: Callable[[Changes], None]) -> None:
        """Call ``listener`` with what other processes (and this one) wrote, as it is seen."""
        self._feed_listeners.append(listener)

    def poll_changes(self) -> Changes:
        """Read the store's change feed since the last poll and tell the caches."""
        changes = self.secrets.store.changes_since(self._marker)
        first = self._marker is None
        self._marker = changes.marker
        if not first and changes.touched != frozenset():
            self.tokens.forget(changes.names("token"))
            self.connections.forget(changes.names("connection"))
            if changes.names("secret") != set() or changes.names("connection") != set():
                self.secrets.forget_listing()
            for listener in self._feed_listeners:
                listener(changes)
        return changes

    def _periodic(self, heartbeat_due: bool, kernels: list[str] | None) -> None:
        """One round of background upkeep, in a worker thread."""
        self.poll_changes()
        self.tokens.flush_use()
        if heartbeat_due:
            self.announce()
            if kernels is not None:
                self.tokens.heartbeat(self.id, kernels)

    async def maintain(self, interval_s: float = 0.5) -> None:
        """A running server's background duty: follow other processes' writes and key-file
        rotations, keep its kernels' tokens alive, announce itself."""
        loop = asyncio.get_running_loop()
        announced_at = -ANNOUNCE_EVERY_S
        while True:
            try:
                changed = self.reload_keys()
                due = changed or loop.time() - announced_at >= ANNOUNCE_EVERY_S
                kernels = self.live_kernels() if due and self.live_kernels else None
                await loop.run_in_executor(None, self._periodic, due, kernels)
                if due:
                    announced_at = loop.time()
            except Exception:  # a broken key file or an unreachable store: say so, keep going
                self.log.exception("jupyter-secrets: background upkeep failed")
            await asyncio.sleep(interval_s)

    async def aclose(self) -> None:
        """Finish what is queued (usage, audit) and release the HTTP client and the store."""
        try:
            self.withdraw()
        except Exception:  # the store may already be gone; it ages out by itself
            self.log.debug("jupyter-secrets: could not withdraw runtime %s", self.id)
        await self.egress.client.aclose()
        self.egress.usage.flush()
        await self.audit.aclose()
        self.secrets.store.close()

    def close(self) -> None:
        """For callers without an event loop (the CLI): write what is queued, close the store."""
        self.egress.usage.flush()
        self.secrets.store.close()


def live_runtimes(store: Store, now: datetime | None = None) -> list[RuntimeRecord]:
    """Servers that announced themselves recently (key rotation checks their keys)."""
    since = (now or datetime.now(timezone.utc)) - LIVE_FOR
    return store.runtimes_seen_since(now_iso(since))


def _open_secrets(
    settings: SecretsSettings, keys: KeySource, log: logging.Logger
) -> SecretsService:
    store = open_store(settings.store_url)
    folder = store.local_folder()
    if folder is not None and keys.key_file.parent.resolve() == Path(folder).resolve():
        log.warning(
            "jupyter-secrets: the key file %s sits in the database's folder; a copy of that "
            "folder carries the key along. Move it elsewhere.", keys.key_file,
        )
    keyring = keys.load(store.key_ids_in_use, log)
    service = SecretsService(store, keyring, settings.limits())
    missing = service.missing_key_ids()
    if missing:
        log.error(
            "jupyter-secrets: the store holds secrets sealed with master key id(s) %s, which "
            "are not configured (configured: %s). Those secrets cannot be used until the key "
            "is added to %s.", ", ".join(missing), ", ".join(keyring.key_ids), KEY_ENV,
        )
    return service


def build_runtime(
    settings: SecretsSettings,
    *,
    log: logging.Logger,
    notebook_path: PathLookup | None = None,
) -> SecretsRuntime:
    """Open the store, load the keys, and build the services on top of them.

    Raises a ``SecretsError`` (key missing or unsafe, store unreachable) with a message to act on.
    """
    keys = KeySource(os.environ.get(KEY_ENV), Path(settings.key_file).expanduser())
    secrets = _open_secrets(settings, keys, log)
    audit = AuditLog(secrets.store, retention_days=settings.audit_retention_days,
                     notebook_path=notebook_path)
    client = build_client(connect_timeout=settings.connect_timeout,
                          idle_timeout=settings.idle_timeout)
    values = ValueIndex(secrets, min_length=settings.redact_min_length)
    runtime = SecretsRuntime(
        settings=settings,
        secrets=secrets,
        connections=ConnectionsService(secrets),
        audit=audit,
        values=values,
        tokens=TokenService(secrets.store,
                            grace=timedelta(seconds=settings.kernel_token_grace)),
        limits=RateLimits(secrets.store,
                          redactions_per_minute=settings.redactions_per_minute),
        egress=Egress(secrets, client, values=values, max_redirects=settings.max_redirects),
        keys=keys,
        log=log,
    )
    runtime.poll_changes()  # start following the change feed from here
    return runtime
