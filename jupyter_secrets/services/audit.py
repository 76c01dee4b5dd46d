"""The audit log: who changed or used which secret, when, from which kernel, to where.

An event holds names and call metadata only: never a value, header, body or query string
(values travel in those, and so do keys that are not ours). A request's event is written
before its response ends (``AuditLog.commit``): on the event loop when the store can write
without waiting, else by one writer thread; either way events queued together share one
transaction. Outside an event loop (the CLI) events are written at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from ..errors import InvalidInput
from ..protocol import LOGGER_NAME
from ..store import AuditFilter, AuditRecord, ConnectionRecord, Store
from ..store.records import now_iso
from ..validation import normalize_name

log = logging.getLogger(LOGGER_NAME)

ACTIONS = (
    "create", "replace", "delete", "metadata", "batch",
    "connection_create", "connection_update", "connection_delete",
    "proxy_call", "request_call", "refused_call", "rotate_key", "token_create",
    "token_revoke", "migrate",
)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_ID = 2**63 - 1  # the largest id a database integer holds
MAX_REASON = 300
MAX_PATH = 2048
PRUNE_EVERY = timedelta(days=1)
# A URL's query inside free text (an upstream's error message): it may carry a key.
_URL_QUERY_RE = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#]*)[?#][^\s]*")

PathLookup = Callable[[str], Awaitable[str | None]]
_MAINTAIN: Any = object()  # a writer-thread queue item: checkpoint and prune, write nothing


def split_destination(url: str) -> tuple[str | None, str]:
    """``(host[:port], path)`` of a URL; the query string and fragment are dropped."""
    parts = urlsplit(url)
    host = parts.hostname
    try:
        port = parts.port
    except ValueError:
        port = None
    if host and ":" in host:
        host = f"[{host}]"
    if host and port is not None:
        host = f"{host}:{port}"
    return host, (parts.path or "/")[:MAX_PATH]


def safe_reason(text: str | None) -> str | None:
    """A refusal or failure message fit for the log: URL queries cut, length bounded."""
    if not text:
        return None
    text = _URL_QUERY_RE.sub(r"\1?…", " ".join(text.split()))
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def connection_fields(record: ConnectionRecord) -> dict[str, Any]:
    """What an event says about a connection: its name, the secrets it uses, its host."""
    host, _ = split_destination(record.base_url)
    return {"connection": record.name, "secrets": record.secrets_used(), "host": host}


def parse_since(raw: str) -> str:
    """An ISO 8601 date or time (naive means UTC) as the store's UTC text."""
    try:
        when = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput(
            "since must be an ISO 8601 date or time, like 2024-05-01 or 2024-05-01T12:00:00Z."
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return now_iso(when)


def _positive_int(raw: object, what: str, maximum: int | None = None) -> int:
    text = str(raw).strip()
    bound = f" from 1 to {maximum}" if maximum else " of 1 or more"
    if not text.isdigit() or int(text) < 1 or (maximum is not None and int(text) > maximum):
        raise InvalidInput(f"{what} must be a whole number{bound}.")
    return int(text)


@dataclass(frozen=True)
class AuditQuery(AuditFilter):
    """Validated filters, shared by the REST API and the CLI."""

    @classmethod
    def parse(cls, args: Mapping[str, str | None]) -> AuditQuery:
        """From raw text filters (query arguments, CLI options); ``InvalidInput`` if bad."""
        given = {k: v for k, v in args.items() if v is not None and v != ""}
        unknown = set(given) - {"secret", "user", "since", "action", "limit", "before"}
        if unknown:
            raise InvalidInput(
                f"Unknown filter(s): {', '.join(sorted(unknown))}. "
                "Allowed: secret, user, action, since, limit, before."
            )
        secret = None
        if "secret" in given:
            try:
                secret = normalize_name(given["secret"])
            except InvalidInput as error:
                raise InvalidInput(f"secret: {error}") from None
        user = given.get("user")
        if user is not None and len(user) > 256:
            raise InvalidInput("user must be at most 256 characters.")
        action = given.get("action")
        if action is not None and action not in ACTIONS:
            raise InvalidInput(f"action must be one of: {', '.join(ACTIONS)}.")
        return cls(
            secret=secret,
            user=user,
            since=parse_since(given["since"]) if "since" in given else None,
            action=action,
            limit=_positive_int(given["limit"], "limit", MAX_LIMIT)
            if "limit" in given else DEFAULT_LIMIT,
            before_id=_positive_int(given["before"], "before", MAX_ID)
            if "before" in given else None,
        )


def session_path_lookup(session_manager: Any) -> PathLookup:
    """Notebook path of a kernel's session (jupyter_server's SessionManager), else None."""

    async def lookup(kernel_id: str) -> str | None:
        try:
            model = await session_manager.get_session(kernel_id=kernel_id)
        except Exception:  # no session (a bare kernel), or it just ended
            return None
        path = model.get("path") if isinstance(model, dict) else None
        return str(path) if path else None

    return lookup


PATH_TTL_S = 10.0


MAINTAIN_EVERY = 256  # events written on the loop between two checkpoints in the thread


@dataclass(frozen=True)
class _Queued:
    event: AuditRecord | None  # None: a marker (drain, housekeeping), written as nothing
    done: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop


def _resolve(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


def _clean(text: str | None) -> str | None:
    """Text any store can hold: a lone surrogate (valid JSON, invalid UTF-8) becomes '?'."""
    if text is None:
        return None
    return text.encode("utf-8", "replace").decode("utf-8")


class AuditLog:
    """Durable before the response: each call waits for its event's group commit.

    ``event()`` builds an event; ``commit()`` returns once it is written. Events committed
    in the same turn of the event loop are written together, on the loop, if the store can
    do that without waiting (``Store.try_append_audit``: SQLite when no other connection
    holds its write lock). Handing an event to a thread and back costs about a millisecond
    of CPU per call, far more than the commit itself, so this is the common path. Otherwise
    (PostgreSQL, a CLI holding SQLite's lock, an error) the batch goes to one writer thread,
    which takes everything queued at that moment into one transaction. An event the store
    refuses is retried alone, then cleaned, so it never takes other events with it. Without
    an event loop (the CLI) ``write_now()`` writes at once.
    """

    def __init__(
        self,
        store: Store,
        *,
        retention_days: int = 90,
        notebook_path: PathLookup | None = None,
    ) -> None:
        self.store = store
        self.retention_days = retention_days
        self.notebook_path = notebook_path
        self._queue: queue.SimpleQueue[_Queued | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._write_lock = threading.Lock()  # one writer at a time, in order
        self._last_prune: datetime | None = None
        self._paths: dict[str, tuple[float, str | None]] = {}
        self._pending = 0
        self._turn: dict[asyncio.AbstractEventLoop, list[_Queued]] = {}  # this loop turn's
        self._since_maintenance = 0
        self._maintenance_queued = False

    def __repr__(self) -> str:
        return f"AuditLog(retention_days={self.retention_days}, queued={self._pending})"

    # -- recording -------------------------------------------------------------------------

    def event(
        self,
        action: str,
        *,
        user: str,
        secrets: Iterable[str] = (),
        kernel_id: str | None = None,
        notebook_path: str | None = None,
        connection: str | None = None,
        host: str | None = None,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        bytes: int | None = None,  # shadows the builtin: it is the field's name in the API
        duration_ms: float | None = None,
        reason: str | None = None,
        grant: str | None = None,
    ) -> AuditRecord:
        """One event, fit for any store: names and call metadata, no query, no value."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        return AuditRecord(
            time=now_iso(),
            user=_clean(user) or "",
            action=action,
            secrets=tuple(sorted({_clean(s) or "" for s in secrets})),
            kernel_id=_clean(kernel_id),
            notebook_path=_clean(notebook_path),
            connection=_clean(connection),
            host=_clean(host),
            method=_clean(method.upper()) if method else None,
            path=_clean(path.split("?", 1)[0].split("#", 1)[0][:MAX_PATH]) if path else None,
            status=status,
            bytes=bytes,
            duration_ms=None if duration_ms is None else round(duration_ms, 2),
            reason=_clean(safe_reason(reason)),
            grant=_clean(grant),
        )

    async def commit(self, event: AuditRecord) -> None:
        """Return once ``event`` is written, with the others committed in this loop turn."""
        loop = asyncio.get_running_loop()
        if event.kernel_id and event.notebook_path is None:
            path = await self._notebook_path(event.kernel_id)
            if path:
                event = replace(event, notebook_path=_clean(path))
        done: asyncio.Future[None] = loop.create_future()
        self._pending += 1
        turn = self._turn.get(loop)
        if turn is None:
            turn = self._turn[loop] = []
            loop.call_soon(self._write_turn, loop)
        turn.append(_Queued(event, done, loop))
        try:
            await asyncio.shield(done)  # a caller hanging up does not cancel the write
        finally:
            self._pending -= 1

    def _write_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write this turn's events on the loop if the store needs no wait, else hand over."""
        batch = self._turn.pop(loop, [])
        if not batch:
            return
        try:
            written = self.store.try_append_audit([item.event for item in batch if item.event])
        except Exception:  # the writer thread retries each event alone and says what is lost
            written = False
        if not written:
            self._hand_over(batch)
            return
        _resolve([item.done for item in batch])
        self._since_maintenance += len(batch)
        if self._since_maintenance >= MAINTAIN_EVERY or (
            self._last_prune is None and not self._maintenance_queued
        ):
            self._since_maintenance = 0
            self._maintenance_queued = True
            self._hand_over([_MAINTAIN])

    def _hand_over(self, items: Sequence[_Queued]) -> None:
        self._ensure_writer()
        for item in items:
            self._queue.put(item)

    def write_now(self, event: AuditRecord) -> None:
        """Write one event synchronously (the CLI, which has no event loop)."""
        self._write([event])

    async def _notebook_path(self, kernel_id: str) -> str | None:
        """The kernel's notebook, looked up at most every few seconds per kernel."""
        if self.notebook_path is None:
            return None
        now = time.monotonic()
        cached = self._paths.get(kernel_id)
        if cached is None or now - cached[0] > PATH_TTL_S:
            cached = (now, await self.notebook_path(kernel_id))
            self._paths[kernel_id] = cached
        return cached[1]

    def _ensure_writer(self) -> None:
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_forever, daemon=True,
                                                name="jupyter-secrets-audit")
                self._writer.start()

    def _write_forever(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            if first is _MAINTAIN:
                self._maintain()
                continue
            batch = [first]
            while True:  # everything queued right now joins this transaction
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None or item is _MAINTAIN:
                    self._queue.put(item)  # stop (or tidy up) after this batch
                    break
                batch.append(item)
            try:
                self._write([item.event for item in batch])
            finally:
                by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
                for item in batch:
                    by_loop.setdefault(item.loop, []).append(item.done)
                for loop, futures in by_loop.items():
                    with contextlib.suppress(RuntimeError):  # that loop has closed
                        loop.call_soon_threadsafe(_resolve, futures)

    def _maintain(self) -> None:
        """In the writer thread: what writes on the loop leave to it (checkpoint, pruning)."""
        self._maintenance_queued = False
        try:
            self.store.checkpoint()
        except Exception:
            log.warning("jupyter-secrets: could not checkpoint the store", exc_info=True)
        with self._write_lock:
            self.prune_if_due()

    async def drain(self) -> None:
        """Wait until everything committed so far is written."""
        loop = asyncio.get_running_loop()
        if self._turn.get(loop):
            self._write_turn(loop)
        if self._writer is None or not self._writer.is_alive():
            return
        done: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Queued(None, done, loop))
        await asyncio.shield(done)

    def _write(self, batch: Sequence[AuditRecord | None]) -> None:
        """One transaction for the batch; if the store refuses it, each event on its own."""
        events = [event for event in batch if event is not None]  # None: a drain marker
        if not events:
            return
        with self._write_lock:
            try:
                self.store.append_audit(events)
            except Exception:
                for event in events:
                    self._write_one(event)
            self.prune_if_due()

    def _write_one(self, event: AuditRecord) -> None:
        try:
            self.store.append_audit([event])
        except Exception:  # say what was lost: names and action only, never a value
            log.error("jupyter-secrets: could not write the audit event %s %s by %s",
                      event.action, ",".join(event.secrets), event.user, exc_info=True)

    async def aclose(self) -> None:
        """At shutdown: write everything still queued, then stop the writer."""
        await self.drain()
        if self._writer is not None and self._writer.is_alive():
            self._queue.put(None)
            await asyncio.get_running_loop().run_in_executor(None, self._writer.join, 10)

    # -- retention -------------------------------------------------------------------------

    def prune_if_due(self, now: datetime | None = None) -> int:
        """Drop events older than the retention period; runs at most once a day."""
        if self.retention_days <= 0:
            return 0
        now = now or datetime.now(timezone.utc)
        if self._last_prune is not None and now - self._last_prune < PRUNE_EVERY:
            return 0
        self._last_prune = now
        try:
            removed = self.store.prune_audit(now_iso(now - timedelta(days=self.retention_days)))
        except Exception:
            log.warning("jupyter-secrets: could not prune the audit log", exc_info=True)
            return 0
        if removed:
            log.info("jupyter-secrets: pruned %d audit event(s) older than %d days", removed,
                     self.retention_days)
        return removed

    # -- reading ---------------------------------------------------------------------------

    def page(self, query: AuditQuery) -> tuple[list[AuditRecord], int | None]:
        """One page, newest first, and the ``before`` id of the next page (None at the end)."""
        rows = self.store.query_audit(replace(query, limit=query.limit + 1))
        events = rows[: query.limit]
        more = len(rows) > query.limit
        return events, (events[-1].id if more and events else None)

