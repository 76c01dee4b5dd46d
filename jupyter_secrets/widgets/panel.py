"""``SecretsPanel``: the secrets manager inside a notebook, drawn by the browser.

The panel's table and forms are the labextension's (the same as the Secrets sidebar): the
browser reads and writes through the REST API with the page's own login, so a typed value
goes from that browser to the server and never through this kernel, its comm messages or
widget state. The kernel side only displays: it shows the front-end's view once the browser
says it can draw it, else a read-only table that says how to get the extension. It keeps the
metadata in ``records`` (read with the kernel token) and hears from the browser only *what*
changed (kind, name, action).
"""

from __future__ import annotations

import asyncio
import html
import threading
from collections.abc import Callable
from typing import Any

from ipywidgets import HTML, DOMWidget, VBox
from traitlets import Unicode

from ..protocol import (
    PANEL_CHANGED,
    PANEL_CHANGED_FIELDS,
    PANEL_MODEL,
    PANEL_REFRESH,
    PANEL_VIEW,
    WIDGET_MODULE,
    WIDGET_MODULE_VERSION,
)
from ._api import APIError, SecretsAPI
from ._table import PAGE_SIZE, ReadOnlyTable, Record

TABS = ("secrets", "connections", "audit", "tokens")
WAITING = "<i>Loading the secrets panel…</i>"
Change = dict[str, str]


class SecretsPanelView(DOMWidget):
    """The front-end's manager (labextension ``SecretsPanelView``): it has no value trait."""

    _model_name = Unicode(PANEL_MODEL).tag(sync=True)
    _model_module = Unicode(WIDGET_MODULE).tag(sync=True)
    _model_module_version = Unicode(f"^{WIDGET_MODULE_VERSION}").tag(sync=True)
    _view_name = Unicode(PANEL_VIEW).tag(sync=True)
    _view_module = Unicode(WIDGET_MODULE).tag(sync=True)
    _view_module_version = Unicode(f"^{WIDGET_MODULE_VERSION}").tag(sync=True)

    tab = Unicode("secrets", help="The tab the panel opens on.").tag(sync=True)
    frontend = Unicode(
        "", help="Set by the front-end when it loads: proof that it can draw the panel."
    ).tag(sync=True)


class SecretsPanel(VBox):
    """Secrets, connections, audit and run tokens in a notebook; a read-only table without
    the extension."""

    def __init__(self, api: SecretsAPI | None = None, *, tab: str = "secrets",
                 fallback_after: float | None = 4.0, page_size: int = PAGE_SIZE,
                 **kwargs: Any) -> None:
        if tab not in TABS:
            raise ValueError(f"tab must be one of {', '.join(TABS)} (got {tab!r}).")
        self.api = api if api is not None else SecretsAPI.from_env()
        self.view = SecretsPanelView(tab=tab)
        self.fallback = ReadOnlyTable(page_size=page_size)
        self.waiting = HTML(WAITING)
        self.records: list[Record] = []
        self.me: dict[str, Any] = {}
        self.error = ""
        self._handlers: list[Callable[[Change], None]] = []
        super().__init__([self.waiting], **kwargs)
        self.add_class("jp-secrets-panel-host")
        self.view.on_msg(self._on_frontend_msg)
        self.view.observe(lambda _c: self._choose(), names="frontend")
        self._load()
        if fallback_after is not None:
            self._schedule_fallback(fallback_after)

    @property
    def can_write(self) -> bool:
        return bool(self.me.get("can_write"))

    @property
    def mode(self) -> str:
        """``frontend`` (the browser draws it), ``read-only`` (no extension) or ``waiting``."""
        shown = self.children[0] if self.children else None
        return ("frontend" if shown is self.view else
                "read-only" if shown is self.fallback else "waiting")

    def on_change(self, handler: Callable[[Change], None]) -> None:
        """Call ``handler({"kind", "name", "action"})`` after the browser changes something."""
        self._handlers.append(handler)

    def refresh(self) -> None:
        """Reload the metadata here, and ask every browser view to reload too."""
        self._load()
        self.view.send({"action": PANEL_REFRESH})

    def use_fallback(self) -> None:
        """Show the read-only table (the browser has not drawn the panel)."""
        self.children = [self.fallback]

    # -- internals -------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            self.me = self.api.me()
            self.records = self.api.list(owner="all", kind="all")
        except APIError as error:
            self.error = str(error)
            self.fallback.status.value = (
                f'<span style="color: var(--jp-error-color1, #d32f2f)">'
                f"{html.escape(self.error)}</span>")
            return
        self.error = ""
        self.fallback.status.value = ""
        # Kept current even while hidden, so falling back is instant (one page of HTML).
        self.fallback.show(self.records)

    def _choose(self) -> None:
        if self.view.frontend:
            self.children = [self.view]

    def _schedule_fallback(self, delay: float) -> None:
        """Give the browser ``delay`` seconds to say it can draw the panel; else fall back."""
        try:
            asyncio.get_running_loop().call_later(delay, self._fallback_unless_drawn)
        except RuntimeError:  # no loop (plain Python): a daemon timer does the same
            timer = threading.Timer(delay, self._fallback_unless_drawn)
            timer.daemon = True
            timer.start()

    def _fallback_unless_drawn(self) -> None:
        if not self.view.frontend:
            self.use_fallback()

    def _on_frontend_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("event") != PANEL_CHANGED:
            return
        # Keep only the protocol's fields (names, never a value), whatever else arrives.
        change = {k: str(content[k]) for k in PANEL_CHANGED_FIELDS[1:] if k in content}
        self._load()
        for handler in list(self._handlers):
            handler(change)
