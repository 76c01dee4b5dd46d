"""Fixed-window rate limits, counted in the store so they hold across processes.

A window is named by its start (UTC, to the minute or the day), so every process counting
the same key in the same minute shares one counter row.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ..errors import RateLimited
from ..store import ConnectionRecord, Store

PRUNE_AFTER = timedelta(days=2)


def minute_window(now: datetime) -> tuple[str, int]:
    """The window's name and the seconds until the next one. Names start with their time,
    so windows of every length sort by time (pruning compares them as text)."""
    return now.strftime("%Y-%m-%dT%H:%M"), 60 - now.second


def day_window(now: datetime) -> tuple[str, int]:
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return now.strftime("%Y-%m-%d/day"), int((tomorrow - now).total_seconds()) + 1


class RateLimits:
    def __init__(self, store: Store, *, redactions_per_minute: int = 120) -> None:
        self.store = store
        self.redactions_per_minute = redactions_per_minute
        self._pruned: datetime | None = None

    def __repr__(self) -> str:
        return f"RateLimits(redactions_per_minute={self.redactions_per_minute})"

    def hit(self, key: str, limit: int, *, per: str = "minute",
            now: datetime | None = None) -> int:
        """Count one use of ``key``; ``RateLimited`` (with a retry time) past ``limit``."""
        now = now or datetime.now(timezone.utc)
        window, retry_after = minute_window(now) if per == "minute" else day_window(now)
        count = self.store.count_hit(key, window, limit)
        self._prune(now)
        if count is None:
            raise RateLimited(
                f"Too many requests: at most {limit} per {per} for {key.split(':', 1)[0]}. "
                f"Try again in {retry_after} s.", retry_after=retry_after)
        return count

    def connection_call(self, connection: ConnectionRecord, username: str) -> None:
        """A call through a connection with limits: per user, per minute and per day."""
        if connection.rate_limit is not None:
            self.hit(f"connection {connection.name}:{username}", connection.rate_limit)
        if connection.daily_quota is not None:
            self.hit(f"connection {connection.name}:{username}", connection.daily_quota,
                     per="day")

    def redaction(self, username: str) -> None:
        """A redaction confirms a guess of a value: bound how many one user may ask for."""
        self.hit(f"redact:{username}", self.redactions_per_minute)

    def _prune(self, now: datetime) -> None:
        if self._pruned is None or now - self._pruned > timedelta(hours=1):
            self._pruned = now
            self.store.prune_counters((now - PRUNE_AFTER).strftime("%Y-%m-%d"))
