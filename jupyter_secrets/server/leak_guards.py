"""Wire the value index into the server: a pre-save hook and log filters."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..egress.redaction import ScrubbingFilter, ValueIndex

# Loggers whose records the filter rewrites: the server's, ours, tornado's, and the HTTP
# client's (a logger's filter applies only to records made on that very logger, so each
# child that logs is listed).
GUARDED_LOGGERS = (
    "ServerApp", "ServerApp.jupyter_secrets", "tornado.access", "tornado.application",
    "tornado.general", "httpx", "httpcore", "httpcore.connection", "httpcore.http11",
    "httpcore.http2", "httpcore.proxy",
)
# httpcore's DEBUG lines dump raw request and response headers, which carry the injected
# values: never emit them, whatever level the root logger is set to.
QUIETED_LOGGERS = ("httpcore",)


def install_leak_guards(
    serverapp: Any, index: ValueIndex, *, redact_on_save: bool
) -> Callable[[], None]:
    """Install the guards; return the function that removes the log filters again."""
    log = logging.getLogger("ServerApp.jupyter_secrets")
    log_filter = ScrubbingFilter(index)
    filtered: list[logging.Filterer] = [logging.getLogger(name) for name in GUARDED_LOGGERS]
    filtered += list(serverapp.log.handlers)
    for target in filtered:
        target.addFilter(log_filter)

    def uninstall() -> None:
        for target in filtered:
            target.removeFilter(log_filter)
    for name in QUIETED_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))

    if not redact_on_save:
        return uninstall

    def redact_before_save(model: dict[str, Any], path: str, **_: Any) -> None:
        """Replace stored values in what is about to be written (notebooks and text files)."""
        redaction = index.scrub_model(model)
        if redaction.found:
            log.warning("jupyter-secrets: redacted %s from %s before saving",
                        ", ".join(redaction.names), path)

    serverapp.contents_manager.register_pre_save_hook(redact_before_save)
    return uninstall
