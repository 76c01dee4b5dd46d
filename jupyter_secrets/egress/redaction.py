"""Find stored values where they should not be: saved files, log lines, error messages.

Part of the value boundary (with ``crypto`` and the rest of ``egress``): to recognise a
value you must hold it. The index keeps one :class:`Scrubber` over every stored value, in
server memory only, rebuilt when the store changes (checked at most every few seconds, so
changes made by the CLI in another process are picked up too). Matching is one pass over
the text for all secrets at once (a single compiled alternation), not one pass per secret.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import crypto
from ..boundary.scrub import Scrubber
from ..errors import SecretsError
from ..protocol import LOGGER_NAME
from ..services.secrets import SecretsService
from ..store import ChangeResult

_MARKER = re.compile(r"\[REDACTED:([A-Za-z0-9_]+)\]")
log = logging.getLogger(LOGGER_NAME)
TEXT_SUFFIXES = {".py", ".txt", ".json", ".env", ".md", ".cfg", ".ini", ".toml", ".yaml", ".yml",
                 ".sh", ".r", ".jl", ".csv", ".log", ".ipynb"}


def _markers(text: str) -> Counter[str]:
    return Counter(_MARKER.findall(text))


@dataclass
class Redaction:
    """What a scan found: the names (never the values) and how often each appeared."""

    found: Counter[str] = field(default_factory=Counter)

    @property
    def names(self) -> list[str]:
        return sorted(self.found)

    def add(self, before: str, after: str) -> None:
        self.found.update(_markers(after) - _markers(before))


class ValueIndex:
    """Every stored value, ready to be found in text. Rebuilt when the store changes."""

    def __init__(self, service: SecretsService, *, recheck_s: float = 1.0) -> None:
        self.service = service
        self.recheck_s = recheck_s
        self._scrubber: Scrubber | None = None
        self._fingerprint: tuple[Any, ...] | None = None
        self._checked_at = 0.0
        self._lock = threading.RLock()
        self._building = False
        self._changed = True
        service.on_change(self._on_change)

    def _on_change(self, _result: ChangeResult) -> None:
        self._changed = True

    def __repr__(self) -> str:
        names = self._scrubber.names if self._scrubber else ()
        return f"ValueIndex({len(names)} secrets)"

    @property
    def last_built(self) -> Scrubber | None:
        """The scrubber from the last successful build, without touching the store."""
        return self._scrubber

    def scrubber(self, *, fresh: bool = False) -> Scrubber | None:
        """The current scrubber (``None`` while there is nothing to find).

        ``fresh`` checks the store now (saves and scans); log lines accept an index up to
        ``recheck_s`` old rather than query the store for every line.
        """
        now = time.monotonic()
        if not fresh and not self._changed and now - self._checked_at < self.recheck_s:
            return self._scrubber
        with self._lock:
            if self._building:  # a log line emitted while we rebuild: use what we have
                return self._scrubber
            self._building = True
            try:
                self._changed = False
                records = self.service.store.list_secrets()
                fingerprint = tuple((r.id, r.version) for r in records)
                if fingerprint != self._fingerprint:
                    self._scrubber = self._build(records) if records else None
                    self._fingerprint = fingerprint
                self._checked_at = now
            finally:
                self._building = False
        return self._scrubber

    def _build(self, records: list[Any]) -> Scrubber:
        values: dict[str, str] = {}
        for record in records:
            try:
                _, plaintext = self.service.open([record.name])[record.name]
            except SecretsError:
                continue  # gone, or sealed under a missing key: nothing to match; logged elsewhere
            values[record.name] = crypto.reveal(plaintext)
        return Scrubber(values)

    # -- text, notebooks, files -------------------------------------------------------------

    def scrub_text(self, text: str, redaction: Redaction | None = None) -> str:
        scrubber = self.scrubber(fresh=redaction is not None)
        if scrubber is None or not text:
            return text
        out = scrubber.scrub_text(text)
        if redaction is not None and out != text:
            redaction.add(text, out)
        return out

    def scrub_json(self, node: Any, redaction: Redaction) -> Any:
        """Every string in a JSON-like tree (notebook sources, outputs, widget state, keys)."""
        if isinstance(node, str):
            return self.scrub_text(node, redaction)
        if isinstance(node, list):
            return [self.scrub_json(item, redaction) for item in node]
        if isinstance(node, dict):
            return type(node)(
                (self.scrub_text(k, redaction), self.scrub_json(v, redaction))
                for k, v in node.items()
            )
        return node

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
            text = raw.decode("utf-8", "surrogateescape")
            scrubbed = self.scrub_text(text, redaction)
            if scrubbed != text:
                model["content"] = base64.b64encode(
                    scrubbed.encode("utf-8", "surrogateescape")).decode("ascii")
        return redaction

    def scan_file(self, path: Path, *, redact: bool) -> Redaction:
        redaction = Redaction()
        text = path.read_text("utf-8", errors="surrogateescape")
        if path.suffix == ".ipynb":
            try:
                scrubbed = json.dumps(self.scrub_json(json.loads(text), redaction), indent=1,
                                      ensure_ascii=False) + "\n"
            except ValueError:
                scrubbed = self.scrub_text(text, redaction)
        else:
            scrubbed = self.scrub_text(text, redaction)
        if redact and redaction.found:
            path.write_text(scrubbed, "utf-8", errors="surrogateescape")
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


class ScrubbingFilter(logging.Filter):
    """Replace stored values in log records before any handler writes them."""

    def __init__(self, index: ValueIndex) -> None:
        super().__init__("jupyter_secrets")
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        try:
            scrubbed = self.index.scrub_text(message)
        except Exception:  # the store is unreachable: keep using the last index we built
            scrubber = self.index.last_built
            scrubbed = scrubber.scrub_text(message) if scrubber else message
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.index.scrub_text(record.exc_text)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True
