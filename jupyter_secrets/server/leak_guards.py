"""Wire the value index into the server: a pre-save hook, log filters, and save notices.

The pre-save hook redacts stored values from what Jupyter is about to write and remembers
the redaction (path, names, count, time and who saved: never a value) in a small bounded
:class:`RedactionLog`, which ``GET /api/secrets/v1/redactions`` serves so the page that saved
can say so and reload the document from disk.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_server.base.call_context import CallContext

from ..api.ui import REDACTIONS_KEY
from ..egress.logs import install_log_scrubbing
from ..egress.redaction import ValueIndex
from ..protocol import LOGGER_NAME
from ..store.records import now_iso

#: How many redacted saves the server remembers (oldest forgotten first).
KEEP_REDACTIONS = 256


@dataclass(frozen=True)
class RedactionNotice:
    id: int
    path: str
    names: tuple[str, ...]
    count: int
    at: str
    user: str | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "path": self.path, "names": list(self.names),
                "count": self.count, "at": self.at}


class RedactionLog:
    """Recent redacted saves, in memory: names, counts and times only. Thread-safe."""

    def __init__(self, keep: int = KEEP_REDACTIONS) -> None:
        self._notices: deque[RedactionNotice] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._last_id = 0

    def __repr__(self) -> str:
        return f"RedactionLog({len(self._notices)} notices, latest={self._last_id})"

    def record(self, path: str, found: dict[str, int], user: str | None) -> RedactionNotice:
        with self._lock:
            self._last_id += 1
            notice = RedactionNotice(self._last_id, path.lstrip("/"), tuple(sorted(found)),
                                     sum(found.values()), now_iso(), user)
            self._notices.append(notice)
        return notice

    def since(
        self, after: int | None, *, path: str | None = None,
        saved_by: Callable[[str], bool] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Notices newer than ``after`` (none when ``after`` is None: just the latest id),
        for ``path`` if given, whose saver ``saved_by`` accepts (saves by nobody known pass)."""
        with self._lock:
            notices, latest = list(self._notices), self._last_id
        if after is None:
            return [], latest
        wanted = path.lstrip("/") if path else None
        return [
            n.to_json() for n in notices
            if n.id > after and (wanted is None or n.path == wanted)
            and (n.user is None or saved_by is None or saved_by(n.user))
        ], latest


@dataclass
class LeakGuards:
    """What :meth:`install` changed, so :meth:`uninstall` can take the filters off again."""

    uninstall: Callable[[], None]
    redactions: RedactionLog = field(default_factory=RedactionLog)

    @classmethod
    def install(cls, serverapp: Any, index: ValueIndex, *, redact_on_save: bool) -> LeakGuards:
        uninstall = install_log_scrubbing(index, loggers=["ServerApp"],
                                          handlers=serverapp.log.handlers)
        guards = cls(uninstall)
        if redact_on_save:
            serverapp.contents_manager.register_pre_save_hook(
                _redact_hook(index, guards.redactions))
            # The API's redactions endpoint reads the log from the web app's settings.
            serverapp.web_app.settings[REDACTIONS_KEY] = guards.redactions
        return guards


def _saving_user() -> str | None:
    """The user whose request is saving (jupyter_server's call context), if any."""
    handler = CallContext.get(CallContext.JUPYTER_HANDLER)
    user = getattr(handler, "current_user", None)
    return getattr(user, "username", None)


def _redact_hook(index: ValueIndex, redactions: RedactionLog) -> Any:
    log = logging.getLogger(LOGGER_NAME)

    def redact_before_save(model: dict[str, Any], path: str, **_: Any) -> None:
        """Replace stored values in what is about to be written (notebooks and text files)."""
        redaction = index.scrub_model(model)
        if redaction.found:
            redactions.record(path, dict(redaction.found), _saving_user())
            log.warning("jupyter-secrets: redacted %s from %s before saving",
                        ", ".join(redaction.names), path)

    return redact_before_save
