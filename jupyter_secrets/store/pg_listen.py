"""One ``LISTEN`` connection per process for the PostgreSQL store's change notifications.

Every commit that appends to the change feed also sends ``NOTIFY`` on one channel. A daemon
thread listens on a dedicated connection (outside the pool) and, for each notification, bumps
a generation counter that waiters block on and calls the subscribed callbacks. After every
(re)connect it does the same, since notifications sent while it was away are lost: the feed
(``changes_since``) stays the truth, a notification only says "look now".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger("jupyter_secrets.store.postgres")

Callback = Callable[[], None]
POLL_S = 0.5  # how often the thread checks whether it was asked to stop
MAX_BACKOFF_S = 5.0


class Notifications:
    """Wakes waiters and calls callbacks when any process commits a change."""

    def __init__(self, conninfo: str, channel: str, connect_kwargs: dict[str, Any]) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._connect_kwargs = connect_kwargs
        self._cond = threading.Condition()
        self._generation = 0
        self._callbacks: list[Callback] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def generation(self) -> int:
        with self._cond:
            return self._generation

    def start(self) -> None:
        with self._cond:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="jupyter-secrets-listen",
                                                daemon=True)
                self._thread.start()

    def subscribe(self, callback: Callback) -> Callback:
        """Call ``callback`` on this thread after each notification; returns an unsubscribe."""
        with self._cond:
            self._callbacks.append(callback)
        self.start()

        def unsubscribe() -> None:
            with self._cond:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def wait(self, seen: int, timeout: float) -> int:
        """Block until the generation moves past ``seen`` or ``timeout`` passes; return it."""
        self.start()
        with self._cond:
            self._cond.wait_for(lambda: self._generation != seen or self._stop.is_set(),
                                timeout)
            return self._generation

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=POLL_S * 4 + MAX_BACKOFF_S)

    def _fire(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one broken subscriber must not silence the others
                log.exception("jupyter-secrets: a change callback failed")

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True,
                                     **self._connect_kwargs) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    backoff = 0.1
                    self._fire()  # (re)connected: whatever happened meanwhile is in the feed
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=POLL_S, stop_after=1):
                            self._fire()
            except psycopg.Error as error:
                if self._stop.is_set():
                    break
                log.warning("jupyter-secrets: listening for store changes failed (%s); "
                            "retrying in %.1f s", str(error).splitlines()[0] if str(error)
                            else type(error).__name__, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
