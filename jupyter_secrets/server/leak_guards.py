"""Wire the value index into the server: a pre-save hook and log filters."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..egress.redaction import ScrubbingFilter, ValueIndex
from ..protocol import LOGGER_NAME

# Loggers whose records the filter rewrites: the server's, ours, tornado's, and the HTTP
# client's (a logger's filter applies only to records made on that very logger, so each
# child that logs is listed).
GUARDED_LOGGERS = (
    "ServerApp", LOGGER_NAME, "tornado.access", "tornado.application",
    "tornado.general", "httpx", "httpcore", "httpcore.connection", "httpcore.http11",
    "httpcore.http2", "httpcore.proxy",
)
# httpcore's DEBUG lines dump raw request and response headers, which carry the injected
# values: never emit them, whatever level the root logger is set to.
QUIETED_LOGGERS = ("httpcore",)


@dataclass
class LeakGuards:
    """What :meth:`install` changed, so :meth:`uninstall` can take the filters off again."""

    log_filter: ScrubbingFilter
    filtered: list[logging.Filterer]

    @classmethod
    def install(cls, serverapp: Any, index: ValueIndex, *, redact_on_save: bool) -> LeakGuards:
        log_filter = ScrubbingFilter(index)
        filtered: list[logging.Filterer] = [logging.getLogger(n) for n in GUARDED_LOGGERS]
        filtered += list(serverapp.log.handlers)
        for target in filtered:
            target.addFilter(log_filter)
        for name in QUIETED_LOGGERS:
            logger = logging.getLogger(name)
            logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))
        if redact_on_save:
            serverapp.contents_manager.register_pre_save_hook(_redact_hook(index))
        return cls(log_filter, filtered)

    def uninstall(self) -> None:
        for target in self.filtered:
            target.removeFilter(self.log_filter)


def _redact_hook(index: ValueIndex) -> Any:
    log = logging.getLogger(LOGGER_NAME)

    def redact_before_save(model: dict[str, Any], path: str, **_: Any) -> None:
        """Replace stored values in what is about to be written (notebooks and text files)."""
        redaction = index.scrub_model(model)
        if redaction.found:
            log.warning("jupyter-secrets: redacted %s from %s before saving",
                        ", ".join(redaction.names), path)

    return redact_before_save
