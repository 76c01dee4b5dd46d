"""Limits per connection: calls per user per minute and per day, across server processes.

Counted in the store, so two servers sharing it share the count; past the limit the proxy
answers 429 with Retry-After before anything leaves, and the audit log records the refusal.
"""

from __future__ import annotations

import httpx
import pytest

from .helpers import ADMIN, USER, http
from .live import LiveServer

pytestmark = pytest.mark.usefixtures("multi_user")


async def test_a_rate_limit_per_user_is_enforced_with_retry_after(
    runtime, api, upstream, server_url, canary
):
    runtime.connections.create("alice", {"name": "llm", "base_url": upstream.url,
                                         "value": canary, "rate_limit": 3})
    statuses = [(await http("GET", f"{server_url}/proxy/llm/echo/{i}", headers=USER))
                for i in range(5)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
    limited = statuses[3]
    assert limited.headers["X-Jupyter-Secrets-Error"] == "1"
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    assert "at most 3 per minute" in limited.json()["message"]
    assert len([r for r in upstream.requests if r.path.startswith("/echo/")]) == 3
    other = await http("GET", f"{server_url}/proxy/llm/echo/x", headers=ADMIN)
    assert other.status_code == 200, "per user: alice has her own count"
    _, log = await api("GET", "audit", headers=ADMIN,
                       params={"action": "refused_call", "user": "bob"})
    assert len(log["events"]) == 2 and "per minute" in log["events"][0]["reason"]
    _, record = await api("GET", "connections", "llm", headers=USER)
    assert (record["rate_limit"], record["daily_quota"]) == (3, None), "shown to users"


async def test_a_daily_quota(runtime, upstream, server_url, canary):
    runtime.connections.create("alice", {"name": "llm", "base_url": upstream.url,
                                         "value": canary, "daily_quota": 2})
    statuses = [(await http("GET", f"{server_url}/proxy/llm/echo/x", headers=USER)).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.parametrize("value", [0, -1, 1.5, "10", True, 10**9])
async def test_bad_limits_are_refused(api, upstream, value):
    status, body = await api("POST", "connections", headers=ADMIN, body={
        "name": "c", "base_url": upstream.url, "auth": {"scheme": "none"},
        "rate_limit": value})
    assert status == 422 and "whole number" in body["message"]


def test_limits_hold_across_servers_sharing_a_store(tmp_path, live_upstream):
    """Two real server processes on one store: a limit of 4 allows 4 calls in all."""
    first = LiveServer(tmp_path / "a").start()
    second = LiveServer(tmp_path / "b", key=first.key)
    second.root.mkdir(parents=True)
    try:
        with httpx.Client(base_url=f"{first.api}/", headers=first.admin, timeout=30) as c:
            assert c.post("connections", json={"name": "llm", "base_url": live_upstream.url,
                                               "value": live_upstream.api_key,
                                               "rate_limit": 4}).status_code == 201
        second.start_on(first.store_url)
        statuses = [httpx.get(f"{server.api}/proxy/llm/echo/x", headers=server.user,
                              timeout=30).status_code
                    for server in (first, second, first, second, first, second)]
    finally:
        first.stop()
        second.stop()
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_pruning_keeps_every_current_window(tmp_path):
    """Windows of a minute and of a day are pruned by time, whatever their length."""
    from datetime import datetime, timedelta, timezone

    from jupyter_secrets.errors import RateLimited
    from jupyter_secrets.services.limits import RateLimits
    from jupyter_secrets.store import open_store

    store = open_store(f"sqlite:///{tmp_path}/s.db")
    limits = RateLimits(store)
    now = datetime(2030, 5, 10, 12, 0, tzinfo=timezone.utc)
    limits.hit("k", 1, per="day", now=now - timedelta(days=3))  # old: pruned
    limits.hit("k", 1, per="day", now=now)
    limits._pruned = None  # prune again now
    limits.hit("k", 5, now=now)  # a minute window, which prunes
    with pytest.raises(RateLimited):
        limits.hit("k", 1, per="day", now=now)  # today's day window survived the prune
    assert limits.hit("k", 1, per="day", now=now - timedelta(days=3)) == 1, "the old one went"
    store.close()
