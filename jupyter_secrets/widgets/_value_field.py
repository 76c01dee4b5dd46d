"""The panel's value field: the labextension's entry when the browser has it, else a fallback.

Without the front-end (a client lacking the labextension, an old widget manager) the value
can only travel through the kernel. Then the field says so, uses a Password box, and clears
it the moment the request has been sent, so the value is not kept in widget state.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ipywidgets import HTML, Layout, Password, VBox

from ._api import APIError, SecretsAPI
from .value_entry import Method, Reply, SecretValueInput

FALLBACK_NOTE = (
    "<small>&#9888; This browser lacks the jupyter-secrets extension, so the value will pass "
    "through the kernel (the field is cleared right after sending).</small>"
)
PASSED_NOTE = (
    "<small>&#9888; The value passed through the kernel: this browser lacks the "
    "jupyter-secrets extension. It was cleared from the kernel right after sending.</small>"
)


@dataclass(frozen=True)
class Outcome:
    """What the panel learns from a submission: a name and version, or the server's words."""

    ok: bool
    name: str = ""
    version: int = 0
    message: str = ""


Done = Callable[[Outcome], None]


class ValueField(VBox):
    """``submit()`` sends the typed value and calls ``done`` with the outcome, sync or later."""

    def __init__(self, fallback_after: float | None = 4.0, **kwargs: Any) -> None:
        self.secure = SecretValueInput(layout=Layout(width="420px"))
        self.fallback = Password(placeholder="Secret value", layout=Layout(width="420px"))
        self.note = HTML("")
        super().__init__(children=[self.secure], **kwargs)
        self.via_kernel = False
        self._done: Done | None = None
        self.secure.on_reply(self._on_reply)
        self.secure.observe(self._on_frontend, names="frontend")
        if fallback_after is not None:
            self._schedule_fallback(fallback_after)

    def _schedule_fallback(self, delay: float) -> None:
        """Give the front-end ``delay`` seconds to say it loaded; else fall back."""
        try:
            asyncio.get_running_loop().call_later(delay, self._fallback_unless_ready)
        except RuntimeError:  # no loop (plain Python): a daemon timer does the same
            timer = threading.Timer(delay, self._fallback_unless_ready)
            timer.daemon = True
            timer.start()

    def _fallback_unless_ready(self) -> None:
        if not self.secure.frontend:
            self.use_fallback()

    def use_fallback(self) -> None:
        self.via_kernel = True
        self.note.value = FALLBACK_NOTE
        self.children = [self.fallback, self.note]

    def _on_frontend(self, change: dict[str, Any]) -> None:
        if change["new"] and self.via_kernel:  # the front-end turned up after all
            self.via_kernel = False
            self.fallback.value = ""
            self.note.value = ""
            self.children = [self.secure]

    def clear(self) -> None:
        self.fallback.value = ""
        self.secure.clear()

    def submit(self, api: SecretsAPI, method: Method, name: str, fields: dict[str, Any],
               done: Done) -> None:
        if not self.via_kernel:
            self._done = done
            self.secure.submit(method, name, fields)
            return
        value, self.fallback.value = self.fallback.value, ""
        try:
            if not value:
                raise APIError(0, "Type the value first.")
            record = (api.create(name, value, **fields) if method == "POST"
                      else api.replace(name, value))
        except APIError as error:
            done(Outcome(ok=False, message=str(error)))
        else:
            self.note.value = PASSED_NOTE
            done(Outcome(ok=True, name=record["name"], version=record["version"]))

    def _on_reply(self, reply: Reply) -> None:
        done, self._done = self._done, None
        if reply["event"] == "saved":
            outcome = Outcome(ok=True, name=str(reply.get("name", "")),
                              version=int(reply.get("version", 0)))
        else:
            outcome = Outcome(ok=False, message=str(reply.get("message", "The save failed.")))
        if done is not None:
            done(outcome)
