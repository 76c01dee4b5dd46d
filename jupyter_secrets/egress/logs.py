"""Scrub stored values out of log records, on every logger that could carry one."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from ..protocol import LOGGER_NAME
from .redaction import ScrubbingFilter, ValueIndex

# Loggers whose records the filter rewrites: ours, tornado's, and the HTTP client's (a
# logger's filter applies only to records made on that very logger, so each child is listed).
GUARDED_LOGGERS = (
    LOGGER_NAME, "tornado.access", "tornado.application", "tornado.general", "httpx",
    "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy",
)
# httpcore's DEBUG lines dump raw request and response headers, which carry the injected
# values: never emit them, whatever level the root logger is set to.
QUIETED_LOGGERS = ("httpcore",)


def install_log_scrubbing(
    index: ValueIndex, *, loggers: Iterable[str] = (), handlers: Iterable[logging.Handler] = ()
) -> Callable[[], None]:
    """Filter every guarded logger (plus ``loggers`` and ``handlers``); return the undo."""
    log_filter = ScrubbingFilter(index)
    filtered: list[logging.Filterer] = [
        logging.getLogger(name) for name in (*GUARDED_LOGGERS, *loggers)]
    filtered += list(handlers)
    for target in filtered:
        target.addFilter(log_filter)
    for name in QUIETED_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))

    def uninstall() -> None:
        for target in filtered:
            target.removeFilter(log_filter)

    return uninstall
