"""The value index: every stored value in server memory, for the proxy and for redaction.

Part of the value boundary (with ``crypto`` and the rest of ``egress``): to recognise a value
you must hold it. Values are opened only through ``SecretsService.open`` and kept as
``Plaintext`` boxes in this process's memory; nothing here writes them anywhere.

Two users:

* the proxy (``outbound.py``) takes the injected values and a cached response scrubber from
  :meth:`ValueIndex.lookup` / :meth:`ValueIndex.scrubber`, so a call neither decrypts nor
  builds an automaton once its values are known;
* redaction of saved files, scans, log lines and error messages finds stored values with
  :class:`~jupyter_secrets.boundary.layers.Layers` (a few base automata plus a small delta)
  and replaces them with ``[REDACTED:NAME]``.

Freshness. Changes made through this process's ``SecretsService`` arrive through
``on_change`` and are applied before the write returns: the next call uses a replaced value,
the next save redacts a new one. Changes by other processes (the CLI on the same SQLite file,
service replicas) are read from the store's change feed at most ``recheck_s`` after the last
check, when the index is next used. Each change costs the decryption of the values it touched
and a rebuild of the small delta automaton; the base automata are rebuilt in the background,
one segment at a time, and readers keep using the last built ones meanwhile.

Redaction skips values shorter than ``min_length`` characters (the ``redact_min_length``
setting, default 8) and values made only of whitespace: such values would mangle indentation
and words, and redacting them would confirm a short guess to whoever saves one. Redaction
confirms a *full* guess of a longer value the same way (a user who saves a guess sees it
redacted): that is inherent to redaction. The proxy's scrubbing of the values it injected into
a call is not subject to the minimum: every injected value is scrubbed from the response.

Saves: one pass of each automaton over all of a notebook's strings joined answers whether any
stored value is present (the usual answer: no; about 35 ms for 10 MB at 10,000 API keys, see
``benchmarks/redaction.py``); only then are the strings holding a match located and scrubbed,
with a small scrubber over the few values found.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from bisect import bisect_right
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import accumulate
from pathlib import Path
from typing import Any

from .. import crypto
from ..boundary.forms import detection_forms, redactable, utf8
from ..boundary.layers import (
    DELTA_NAMES,
    SEGMENT_NAMES,
    Layers,
    Segment,
    Token,
    build_detector,
    plan_compaction,
)
from ..boundary.scrub import Scrubber
from ..crypto import Plaintext
from ..errors import SecretNotFound, SecretsError
from ..protocol import LOGGER_NAME
from ..services.secrets import SecretsService
from ..store import ChangeResult, SecretRecord

__all__ = ["DEFAULT_REDACT_MIN_LENGTH", "Redaction", "ScrubbingFilter", "ValueIndex"]

DEFAULT_REDACT_MIN_LENGTH = 8
#: Seconds between checks of the store's change feed (writes by other processes).
RECHECK_S = 0.5
#: Changes from another process applied inline when the index is used; more go to the worker.
SYNC_REFRESH_NAMES = 64
#: Seconds changes gather in the delta before the worker folds them into the segments.
COMPACT_DELAY_S = 1.0
#: Scrubbers kept for the proxy (one per set of injected values) and for redaction.
SCRUBBER_CACHE = 256

_MARKER = re.compile(r"\[REDACTED:([A-Za-z0-9_]+)\]")
log = logging.getLogger(LOGGER_NAME)
TEXT_SUFFIXES = {".py", ".txt", ".json", ".env", ".md", ".cfg", ".ini", ".toml", ".yaml", ".yml",
                 ".sh", ".r", ".jl", ".csv", ".log", ".ipynb"}
Opened = dict[str, tuple[SecretRecord, str]]


def _markers(text: str) -> Counter[str]:
    return Counter(_MARKER.findall(text))


def _strings_of(node: Any, out: list[str]) -> None:
    """Append every string of a JSON-like tree (dict keys included) to ``out``."""
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, list):
        for item in node:
            _strings_of(item, out)
    elif isinstance(node, dict):
        for key, item in node.items():
            out.append(key)
            _strings_of(item, out)


def _char_spans(text: str, data: bytes, spans: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Byte offsets in ``data`` (``text`` in UTF-8) as character offsets in ``text``."""
    if text.isascii():
        yield from spans
        return
    chars = 0
    done = 0

    def to_char(offset: int) -> int:
        nonlocal chars, done
        chars += len(data[done:offset].decode("utf-8", "surrogatepass"))
        done = offset
        return chars

    for start, end in spans:  # in order: offsets only grow
        yield to_char(start), to_char(end)


def _replace_strings(
    node: Any, targets: set[int], scrubber: Scrubber, redaction: Redaction
) -> Any:
    """Scrub the strings numbered in ``targets`` (in ``_strings_of`` order), in place."""
    count = 0

    def visit(item: Any) -> Any:
        nonlocal count
        if isinstance(item, str):
            count += 1
            if count - 1 not in targets:
                return item
            out = scrubber.scrub_text(item)
            if out != item:
                redaction.add(item, out)
            return out
        if isinstance(item, list):
            for position, child in enumerate(item):
                new = visit(child)
                if new is not child:
                    item[position] = new
            return item
        if isinstance(item, dict):
            pairs = [(visit(key), key, visit(child), child) for key, child in item.items()]
            if any(new_key is not key for new_key, key, _, _ in pairs):
                return type(item)((new_key, new) for new_key, _, new, _ in pairs)
            for _, key, new, child in pairs:
                if new is not child:
                    item[key] = new
            return item
        return item

    return visit(node)


def _token(record: SecretRecord) -> Token:
    return (record.id, record.version)


@dataclass
class Redaction:
    """What a scan found: the names (never the values) and how often each appeared."""

    found: Counter[str] = field(default_factory=Counter)

    @property
    def names(self) -> list[str]:
        return sorted(self.found)

    def add(self, before: str, after: str) -> None:
        self.found.update(_markers(after) - _markers(before))


@dataclass(frozen=True, eq=False)
class _Entry:
    record: SecretRecord
    value: Plaintext = field(repr=False)
    # What redaction searches for: empty when the value is too short to redact.
    forms: tuple[bytes, ...] = field(repr=False)

    @property
    def redactable(self) -> bool:
        return bool(self.forms)

    @property
    def token(self) -> Token:
        return _token(self.record)


class _Worker:
    """One daemon thread for background jobs, started when there is work, gone when idle.

    Jobs are keyed: a job whose key is already queued is not queued twice.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: deque[tuple[str, Callable[[], None]]] = deque()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    def submit(self, key: str, job: Callable[[], None]) -> None:
        with self._lock:
            if key in self._queued:
                return
            self._queued.add(key)
            self._jobs.append((key, job))
            self._idle.clear()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    self._thread = None
                    self._idle.set()
                    return
                key, job = self._jobs.popleft()
                self._queued.discard(key)
            try:
                job()
            except Exception as error:  # never with a value in it: our errors hold names
                log.warning("jupyter-secrets: value index job %s failed: %s", key,
                            type(error).__name__)

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)


class ValueIndex:
    """Every stored value, kept current one change at a time. See the module docstring."""

    def __init__(
        self,
        service: SecretsService,
        *,
        min_length: int = DEFAULT_REDACT_MIN_LENGTH,
        recheck_s: float = RECHECK_S,
        compact_delay_s: float = COMPACT_DELAY_S,
        segment_names: int = SEGMENT_NAMES,
    ) -> None:
        self.service = service
        self.min_length = min_length
        self.recheck_s = recheck_s
        self.compact_delay_s = compact_delay_s
        self.segment_names = segment_names
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._complete = False  # every stored value is held (redaction needs that)
        self._seq = 0
        self._touched: dict[str, int] = {}  # name -> _seq of the last change applied to it
        self._marker: int | None = None  # change feed position already applied
        self._polled_at = float("-inf")
        self._poll_lock = threading.Lock()
        # Redaction layers: segments, stale copies in each, the delta, and where names live.
        self._segments: list[Segment] = []
        self._stale: list[set[str]] = []
        self._seg_of: dict[str, int] = {}
        self._delta: set[str] = set()
        self._delta_detector: Any = None
        self._delta_dirty = False
        self._layers = Layers()
        self._scrubbers: dict[Any, Scrubber] = {}
        self._redactors: dict[Any, Scrubber] = {}
        self._ready = threading.Event()
        self._loading = False
        self._load_error: BaseException | None = None
        self._local = threading.local()  # .busy: this thread is maintaining the index
        self._worker = _Worker("jupyter-secrets-value-index")
        service.on_change(self._on_change)

    def __repr__(self) -> str:
        return (f"ValueIndex({len(self._entries)} values, complete={self._complete}, "
                f"{self._layers!r})")

    @property
    def layers(self) -> Layers:
        """The matchers redaction uses now (for benchmarks and tests)."""
        return self._layers

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait for background work (loading, compaction); ``False`` on timeout."""
        return self._worker.wait_idle(timeout)

    # -- the proxy ---------------------------------------------------------------------------

    def lookup_cached(self, names: Iterable[str]) -> Opened | None:
        """Records and values from memory, or ``None`` when :meth:`lookup` has work to do.

        No I/O: ``None`` when a name is not held yet or the change feed is due for a check.
        """
        if time.monotonic() - self._polled_at >= self.recheck_s:
            return None
        entries = self._entries
        opened: Opened = {}
        for name in names:
            entry = entries.get(name)
            if entry is None:
                return None
            opened[name] = (entry.record, crypto.reveal(entry.value))
        return opened

    def lookup(self, names: Iterable[str]) -> Opened:
        """Records and values of ``names``, reading the store only for what is not held.

        ``SecretNotFound`` names a missing secret; errors opening a value (a missing master
        key, a tampered row) propagate as ``SecretsError``.
        """
        wanted = sorted(set(names))
        self._poll_if_due()
        missing = [name for name in wanted if name not in self._entries]
        if missing:
            seq = self._seq
            self._apply(self.service.open(missing), {}, set(), seq)
        opened: Opened = {}
        for name in wanted:
            entry = self._entries.get(name)
            if entry is None:  # deleted while we looked
                raise SecretNotFound(name)
            opened[name] = (entry.record, crypto.reveal(entry.value))
        return opened

    def scrubber(
        self, opened: Opened, extra_patterns: Mapping[str, Iterable[str]] | None = None
    ) -> Scrubber:
        """The response scrubber for these injected values, built once per set of versions."""
        extras = tuple(sorted((name, tuple(v)) for name, v in (extra_patterns or {}).items()))
        key = (tuple(sorted((n, *_token(r)) for n, (r, _) in opened.items())), extras)
        cache = self._scrubbers
        scrubber = cache.get(key)
        if scrubber is None:
            scrubber = Scrubber({name: value for name, (_, value) in opened.items()},
                                dict(extras))
            if len(cache) >= SCRUBBER_CACHE:
                cache.clear()
            cache[key] = scrubber
        return scrubber

    # -- redaction: text, notebooks, files ----------------------------------------------------

    def scrub_text(self, text: str, redaction: Redaction | None = None) -> str:
        """``text`` with every stored value replaced (values below the minimum excepted)."""
        if not text:
            return text
        layers = self._redaction_layers()
        names = layers.names_in(utf8(text))
        if not names:
            return text
        out = self._redactor(names).scrub_text(text)
        if redaction is not None and out != text:
            redaction.add(text, out)
        return out

    def scrub_log(self, text: str) -> str:
        """:meth:`scrub_text` that never raises (log lines): uses what is built on error."""
        try:
            return self.scrub_text(text)
        except Exception:
            try:
                names = self._layers.names_in(utf8(text)) if text else set()
                return self._redactor(names).scrub_text(text) if names else text
            except Exception:  # nothing built yet and the store unreachable
                return text

    def scrub_json(self, node: Any, redaction: Redaction) -> Any:
        """Every string in a JSON-like tree (notebook sources, outputs, widget state, keys).

        One search over all the strings joined answers whether any stored value is there
        (usually not). Only then are the strings holding a match located, from the match
        offsets, and scrubbed one by one; the tree is changed in place and returned.
        """
        strings: list[str] = []
        _strings_of(node, strings)
        joined = "\0".join(strings)
        data = utf8(joined)
        names = self._redaction_layers().names_in(data)
        if not names:
            return node
        scrubber = self._redactor(names)
        ends = list(accumulate(len(text) + 1 for text in strings))  # each string's end + 1
        targets: set[int] = set()
        for start, end in _char_spans(joined, data, scrubber.spans(data)):
            targets.update(range(bisect_right(ends, start), bisect_right(ends, end - 1) + 1))
        return _replace_strings(node, targets, scrubber, redaction)

    def scrub_model(self, model: dict[str, Any]) -> Redaction:
        """Redact a contents-API model in place (notebook, text or base64 file)."""
        redaction = Redaction()
        content = model.get("content")
        if content is None:
            return redaction
        if model.get("type") == "notebook":
            model["content"] = self.scrub_json(content, redaction)
        elif model.get("format") == "text" and isinstance(content, str):
            model["content"] = self.scrub_text(content, redaction)
        elif model.get("format") == "base64" and isinstance(content, str):
            raw = base64.b64decode(content)
            scrubbed = self._scrub_raw(raw, redaction)
            if scrubbed is not raw:
                model["content"] = base64.b64encode(scrubbed).decode("ascii")
        return redaction

    def _scrub_raw(self, raw: bytes, redaction: Redaction) -> bytes:
        names = self._redaction_layers().names_in(raw)
        if not names:
            return raw
        out = self._redactor(names).scrub_bytes(raw)
        if out != raw:
            redaction.add(raw.decode("latin-1"), out.decode("latin-1"))
        return out

    def scan_file(self, path: Path, *, redact: bool) -> Redaction:
        """Find stored values in one file (a notebook: in its strings, whatever the escaping)."""
        redaction = Redaction()
        raw = path.read_bytes()
        scrubbed: bytes | None = None
        if path.suffix.lower() == ".ipynb":
            try:
                tree = json.loads(raw.decode("utf-8", "surrogateescape"))
            except ValueError:
                pass  # not JSON after all: scanned as text below
            else:
                tree = self.scrub_json(tree, redaction)
                scrubbed = (json.dumps(tree, indent=1, ensure_ascii=False) + "\n").encode(
                    "utf-8", "surrogateescape")
        if scrubbed is None:
            scrubbed = self._scrub_raw(raw, redaction)
        if redact and redaction.found:
            path.write_bytes(scrubbed)
        return redaction

    def scan_tree(self, root: Path, *, redact: bool) -> Iterator[tuple[Path, Redaction]]:
        """Files under ``root`` (or ``root`` itself) that hold stored values."""
        paths = [root] if root.is_file() else sorted(
            p for p in root.rglob("*")
            if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
        for path in paths:
            redaction = self.scan_file(path, redact=redact)
            if redaction.found:
                yield path, redaction

    def _redactor(self, names: Iterable[str]) -> Scrubber:
        """A small scrubber over the values of ``names`` (those found in a text)."""
        entries = self._entries
        held = {name: entries[name] for name in names if name in entries}
        key = tuple(sorted((name, *entry.token) for name, entry in held.items()))
        cache = self._redactors
        scrubber = cache.get(key)
        if scrubber is None:
            values = {name: crypto.reveal(entry.value) for name, entry in held.items()}
            scrubber = Scrubber(values, min_length=self.min_length)
            if len(cache) >= SCRUBBER_CACHE:
                cache.clear()
            cache[key] = scrubber
        return scrubber

    def _redaction_layers(self) -> Layers:
        """The current layers, loading every value first if that never happened."""
        if getattr(self._local, "busy", False):  # logging from our own maintenance
            return self._layers
        if not self._ready.is_set() or self._load_error is not None:
            self._load()
        self._poll_if_due()
        return self._layers

    # -- keeping current ----------------------------------------------------------------------

    def _load(self) -> None:
        """Load every value (once; again after a failure) and wait for it."""
        with self._lock:
            if self._load_error is not None and self._ready.is_set():
                self._load_error = None
                self._ready.clear()
            if not self._loading and not self._ready.is_set():
                self._loading = True
                self._worker.submit("load", self._load_all)
        self._ready.wait()
        if self._load_error is not None:
            raise SecretsError(
                "jupyter-secrets could not read the stored values to redact them "
                f"({type(self._load_error).__name__}); nothing was changed. Check the store "
                "and the master key, then try again."
            )

    def _load_all(self) -> None:
        """Read every stored value (reusing held ones whose version is unchanged)."""
        self._local.busy = True
        try:
            store = self.service.store
            marker = store.changes_since(None).marker  # before reading: nothing is missed
            seq = self._seq
            records = store.list_secrets()
            upserts: dict[str, tuple[SecretRecord, Plaintext]] = {}
            metadata: dict[str, SecretRecord] = {}
            for record in records:
                held = self._entries.get(record.name)
                if held is not None and held.token == _token(record):
                    metadata[record.name] = record
                else:
                    opened = self._open_one(record.name)
                    if opened is not None:
                        upserts[record.name] = opened
            with self._lock:
                gone = set(self._entries) - set(upserts) - set(metadata)
            self._apply(upserts, metadata, gone, seq, publish=False)
            with self._lock:
                self._marker = marker if self._marker is None else max(self._marker, marker)
                self._polled_at = time.monotonic()
                self._complete = True
                self._publish()
            self._compact()
            self._load_error = None
        except Exception as error:
            self._load_error = error
            log.warning("jupyter-secrets: could not load stored values for redaction: %s",
                        type(error).__name__)
        finally:
            self._loading = False
            self._local.busy = False
            self._ready.set()

    def _open_one(self, name: str) -> tuple[SecretRecord, Plaintext] | None:
        try:
            return self.service.open([name])[name]
        except SecretNotFound:
            return None
        except SecretsError as error:
            log.warning("jupyter-secrets: secret %s cannot be opened (%s); it is not redacted "
                        "until that is fixed.", name, type(error).__name__)
            return None

    def _poll_if_due(self) -> None:
        """Apply other processes' writes if ``recheck_s`` has passed since the last check."""
        if time.monotonic() - self._polled_at < self.recheck_s:
            return
        if getattr(self._local, "busy", False) or not self._poll_lock.acquire(blocking=False):
            return  # maintenance in progress, or another thread is checking right now
        self._local.busy = True
        try:
            self._poll()
        finally:
            self._local.busy = False
            self._poll_lock.release()

    def _poll(self) -> None:
        store = self.service.store
        if self._marker is None:
            self._marker = store.changes_since(None).marker
            self._polled_at = time.monotonic()
            return
        changes = store.changes_since(self._marker)
        self._polled_at = time.monotonic()
        names = changes.names("secret")
        if names is None:  # the feed lost track: reread everything in the background
            self._worker.submit("load", self._load_all)
            return
        if not self._complete:
            names &= set(self._entries)
        if len(names) > SYNC_REFRESH_NAMES:
            self._worker.submit("refresh", lambda: self._refresh(names, changes.marker))
            return
        self._refresh(names, changes.marker)

    def _refresh(self, names: set[str], marker: int) -> None:
        """Bring ``names`` up to date from the store, then advance the feed marker."""
        busy = getattr(self._local, "busy", False)
        self._local.busy = True
        try:
            store = self.service.store
            seq = self._seq
            upserts: dict[str, tuple[SecretRecord, Plaintext]] = {}
            metadata: dict[str, SecretRecord] = {}
            deleted: set[str] = set()
            for name in names:
                record = store.get_secret(name)
                held = self._entries.get(name)
                if record is None:
                    deleted.add(name)
                elif held is not None and held.token == _token(record):
                    metadata[name] = record  # allowed hosts, placements, key id
                else:
                    opened = self._open_one(name)
                    if opened is None:
                        deleted.add(name)
                    else:
                        upserts[name] = opened
            self._apply(upserts, metadata, deleted, seq)
            with self._lock:
                self._marker = marker if self._marker is None else max(self._marker, marker)
        finally:
            self._local.busy = busy

    def _on_change(self, result: ChangeResult) -> None:
        """A write through this process's service committed: apply it before it returns."""
        busy = getattr(self._local, "busy", False)
        self._local.busy = True
        try:
            seq = self._seq
            upserted = set(result.upserted)
            if not self._complete:
                upserted &= set(self._entries)  # only what we hold; the rest loads on use
            upserts: dict[str, tuple[SecretRecord, Plaintext]] = {}
            deleted = set(result.deleted)
            for name in sorted(upserted):
                opened = self._open_one(name)
                if opened is None:
                    deleted.add(name)
                else:
                    upserts[name] = opened
            metadata = {n: r for n, r in result.records.items() if n not in upserted}
            self._apply(upserts, metadata, deleted, seq)
        except Exception as error:  # the write is committed: never fail it; the feed catches up
            self._polled_at = float("-inf")
            log.warning("jupyter-secrets: value index update deferred (%s)", type(error).__name__)
        finally:
            self._local.busy = busy

    def _apply(
        self,
        upserts: Mapping[str, tuple[SecretRecord, Plaintext]],
        metadata: Mapping[str, SecretRecord],
        deleted: Iterable[str],
        seq: int,
        *,
        publish: bool = True,
    ) -> None:
        """Apply changes read after ``seq``, skipping names changed again since then."""
        with self._lock:
            changed = False
            for name in deleted:
                if self._touched.get(name, 0) > seq:
                    continue
                self._bump(name)
                if self._entries.pop(name, None) is not None:
                    changed = True
                    self._unplace(name)
            for name, (record, value) in upserts.items():
                if self._touched.get(name, 0) > seq:
                    continue
                self._bump(name)
                held = self._entries.get(name)
                if held is not None and held.token == _token(record):
                    self._entries[name] = replace(held, record=record)
                    continue
                plain = crypto.reveal(value)
                found = tuple(detection_forms(plain)) if redactable(plain, self.min_length) \
                    else ()
                entry = _Entry(record, value, found)
                self._entries[name] = entry
                changed = True
                self._unplace(name)
                if entry.redactable:
                    self._delta.add(name)
            for name, record in metadata.items():
                held = self._entries.get(name)
                if held is not None and held.token == _token(record):
                    self._entries[name] = replace(held, record=record)
            if changed:
                self._scrubbers = {}
                self._redactors = {}
                if publish and self._complete:
                    self._publish()
                    self._schedule_compaction()

    def _bump(self, name: str) -> None:
        self._seq += 1
        self._touched[name] = self._seq

    def _unplace(self, name: str) -> None:
        """The copy of ``name`` in its segment (if any) is no longer the stored value."""
        index = self._seg_of.pop(name, None)
        if index is not None:
            self._stale[index].add(name)
        if name in self._delta:
            self._delta.discard(name)
        self._delta_dirty = True

    def _publish(self) -> None:
        """Swap in new layers (under the lock): the delta is rebuilt if it changed."""
        if self._delta_dirty:
            values = {n: self._entries[n].forms for n in self._delta}
            self._delta_detector = build_detector(values) if values else None
            self._delta_dirty = False
        self._layers = Layers(
            segments=tuple(self._segments),
            stale=tuple(frozenset(s) for s in self._stale),
            delta=self._delta_detector,
            delta_names=frozenset(self._delta),
        )

    def _schedule_compaction(self) -> None:
        if not self._delta and not any(self._stale):
            return
        delay = 0.0 if len(self._delta) >= min(DELTA_NAMES, self.segment_names) \
            else self.compact_delay_s

        def job() -> None:
            if delay:
                time.sleep(delay)
            self._compact()

        self._worker.submit("compact", job)

    def _compact(self) -> None:
        """Fold the delta into segments, rebuilding one segment per round (GIL-bound)."""
        busy = getattr(self._local, "busy", False)
        self._local.busy = True
        try:
            while True:
                with self._lock:
                    plans = plan_compaction(tuple(self._segments),
                                            tuple(frozenset(s) for s in self._stale),
                                            self._delta, capacity=self.segment_names)
                    if not plans:
                        self._drop_empty_segments()
                        return
                    index, names = min(plans.items())
                    held = {n: self._entries[n] for n in names
                            if n in self._entries and self._entries[n].redactable}
                    values = {n: e.forms for n, e in held.items()}
                    built = {n: e.token for n, e in held.items()}
                segment = Segment(built=built, detector=build_detector(values))  # slow part
                with self._lock:
                    self._install(index, segment)
                    self._publish()
        finally:
            self._local.busy = busy

    def _install(self, index: int, segment: Segment) -> None:
        if index >= len(self._segments):
            self._segments.append(segment)
            self._stale.append(set())
            index = len(self._segments) - 1
        else:
            for name in self._segments[index].built:
                if self._seg_of.get(name) == index:
                    del self._seg_of[name]
            self._segments[index] = segment
        stale: set[str] = set()
        for name, token in segment.built.items():
            entry = self._entries.get(name)
            if entry is None or entry.token != token or not entry.redactable:
                stale.add(name)  # changed while the segment was being built
                continue
            previous = self._seg_of.get(name)
            if previous is not None and previous != index:
                self._stale[previous].add(name)
            self._seg_of[name] = index
            if name in self._delta:
                self._delta.discard(name)
                self._delta_dirty = True
        self._stale[index] = stale

    def _drop_empty_segments(self) -> None:
        keep = [i for i, s in enumerate(self._segments) if s.built]
        if len(keep) == len(self._segments):
            return
        remap = {old: new for new, old in enumerate(keep)}
        self._segments = [self._segments[i] for i in keep]
        self._stale = [self._stale[i] for i in keep]
        self._seg_of = {n: remap[i] for n, i in self._seg_of.items()}
        self._publish()


def reaches_a_handler(record: logging.LogRecord) -> bool:
    """Whether any handler will take ``record``: the walk ``Logger.callHandlers`` makes.

    Jupyter's loggers pass DEBUG records to their handlers, which then drop them: scrubbing
    every request's debug access line would cost more than the rest of its logging.
    """
    logger: logging.Logger | None = logging.getLogger(record.name)
    any_handler = False
    while logger is not None:
        for handler in logger.handlers:
            any_handler = True
            if record.levelno >= handler.level:
                return True
        if not logger.propagate:
            break
        logger = logger.parent
    last_resort = logging.lastResort
    return not any_handler and last_resort is not None and record.levelno >= last_resort.level


class ScrubbingFilter(logging.Filter):
    """Replace stored values in log records before any handler writes them."""

    def __init__(self, index: ValueIndex) -> None:
        super().__init__("jupyter_secrets")
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        if not reaches_a_handler(record):
            return True  # written nowhere (a DEBUG line under INFO handlers): nothing to do
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        scrubbed = self.index.scrub_log(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.index.scrub_log(record.exc_text)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True
