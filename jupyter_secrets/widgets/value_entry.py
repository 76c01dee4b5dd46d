"""Kernel side of the labextension's value field: it has no value trait, by design.

The front-end (``labextension/src/widget.ts``) keeps the typed value in its own ``<input>``,
sends it to the REST API with the page's credentials when asked to, and answers the kernel
with only ``{"event": "saved", "name", "version"}`` or ``{"event": "error", "message"}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from ipywidgets import DOMWidget
from traitlets import Bool, Unicode

from ..protocol import (
    PANEL_CLEAR,
    PANEL_ERROR,
    PANEL_REPLY_FIELDS,
    PANEL_SAVED,
    PANEL_SUBMIT,
    PANEL_SUBMIT_REQUESTED,
    WIDGET_MODULE,
    WIDGET_MODULE_VERSION,
)

MODULE_NAME = WIDGET_MODULE
MODULE_VERSION = f"^{WIDGET_MODULE_VERSION}"

Method = Literal["POST", "PUT"]
Reply = dict[str, Any]


class SecretValueInput(DOMWidget):
    """A password box whose value goes from the browser to the server, never to the kernel."""

    _model_name = Unicode("SecretValueModel").tag(sync=True)
    _model_module = Unicode(MODULE_NAME).tag(sync=True)
    _model_module_version = Unicode(MODULE_VERSION).tag(sync=True)
    _view_name = Unicode("SecretValueView").tag(sync=True)
    _view_module = Unicode(MODULE_NAME).tag(sync=True)
    _view_module_version = Unicode(MODULE_VERSION).tag(sync=True)

    placeholder = Unicode("Secret value").tag(sync=True)
    disabled = Bool(False).tag(sync=True)
    frontend = Unicode(
        "", help="Set by the front-end when it loads: proof that it can send values."
    ).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._reply_handlers: list[Callable[[Reply], None]] = []
        self._enter_handlers: list[Callable[[], None]] = []
        self.on_msg(self._on_frontend_msg)

    def submit(self, method: Method, name: str, fields: dict[str, Any] | None = None) -> None:
        """Ask the front-end to send its typed value: POST creates ``name``, PUT replaces it."""
        self.send({"action": PANEL_SUBMIT, "method": method, "name": name, "fields": fields or {}})

    def clear(self) -> None:
        """Ask the front-end to forget whatever was typed (Cancel)."""
        self.send({"action": PANEL_CLEAR})

    def on_reply(self, handler: Callable[[Reply], None]) -> None:
        self._reply_handlers.append(handler)

    def on_enter(self, handler: Callable[[], None]) -> None:
        self._enter_handlers.append(handler)

    def _on_frontend_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        event = content.get("event")
        if event == PANEL_SUBMIT_REQUESTED:
            for on_enter in list(self._enter_handlers):
                on_enter()
        elif event in (PANEL_SAVED, PANEL_ERROR):
            # Keep only the fields of the protocol, whatever else a front-end might send.
            reply = {k: content[k] for k in PANEL_REPLY_FIELDS if k in content}
            for on_reply in list(self._reply_handlers):
                on_reply(reply)
