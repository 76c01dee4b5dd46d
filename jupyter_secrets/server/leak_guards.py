"""Wire the value index into the server: a pre-save hook and log filters."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..egress.logs import install_log_scrubbing
from ..egress.redaction import ValueIndex
from ..protocol import LOGGER_NAME


@dataclass
class LeakGuards:
    """What :meth:`install` changed, so :meth:`uninstall` can take the filters off again."""

    uninstall: Callable[[], None]

    @classmethod
    def install(cls, serverapp: Any, index: ValueIndex, *, redact_on_save: bool) -> LeakGuards:
        uninstall = install_log_scrubbing(index, loggers=["ServerApp"],
                                          handlers=serverapp.log.handlers)
        if redact_on_save:
            serverapp.contents_manager.register_pre_save_hook(_redact_hook(index))
        return cls(uninstall)


def _redact_hook(index: ValueIndex) -> Any:
    log = logging.getLogger(LOGGER_NAME)

    def redact_before_save(model: dict[str, Any], path: str, **_: Any) -> None:
        """Replace stored values in what is about to be written (notebooks and text files)."""
        redaction = index.scrub_model(model)
        if redaction.found:
            log.warning("jupyter-secrets: redacted %s from %s before saving",
                        ", ".join(redaction.names), path)

    return redact_before_save
