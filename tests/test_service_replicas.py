"""Several secrets-service replicas on one PostgreSQL store.

Every cache (connections, values, tokens) follows writes made on another replica through the
store's change feed: a write on one replica is used by a proxied call on the other within a
second. A replica killed (SIGKILL) in the middle of a batch leaves all of it or none of it.
"""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from .live import LiveService

pytestmark = pytest.mark.slow


@pytest.fixture
def replicas(tmp_path, postgres_url):
    first = LiveService(tmp_path / "a", store_url=postgres_url,
                        config={"max_batch_size": 5000}).start()
    second = LiveService(tmp_path / "b", store_url=postgres_url, key=first.key,
                         admin_token=first.admin_token).start()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def _until(check, timeout: float = 1.0) -> float:
    """Seconds until ``check()`` is true (fails past ``timeout``)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_write_on_one_replica_is_used_by_the_other_within_a_second(
    replicas, live_upstream
):
    first, second = replicas
    host = f"127.0.0.1:{live_upstream.port}"
    server = {"Authorization": f"token {first.server_token('alice')}"}
    minted = httpx.post(f"{second.api}/kernel-tokens", headers=server,
                        json={"kernel_id": "k1"}).json()
    kernel = {"Authorization": f"Bearer {minted['token']}"}
    assert httpx.get(f"{first.api}/me", headers=kernel).status_code == 200, \
        "a token minted on one replica works on the other"

    assert httpx.post(f"{first.api}/connections", headers=first.admin, json={
        "name": "up", "base_url": live_upstream.url, "value": "first-key-123456",
    }).status_code == 201
    _until(lambda: httpx.get(f"{second.api}/proxy/up/echo/1", headers=kernel).status_code
           == 200)
    assert live_upstream.requests[-1].headers["Authorization"] == "Bearer first-key-123456"

    assert httpx.patch(f"{first.api}/connections/up", headers=first.admin,
                       json={"value": "second-key-123456"}).status_code == 200

    def second_uses_the_new_key() -> bool:
        httpx.get(f"{second.api}/proxy/up/echo/2", headers=kernel)
        return live_upstream.requests[-1].headers["Authorization"] == "Bearer second-key-123456"

    assert _until(second_uses_the_new_key) < 1.0

    assert httpx.post(f"{first.api}/secrets", headers=first.admin, json={
        "name": "ADHOC", "value": "adhoc-value-123456", "allowed_hosts": [host]},
    ).status_code == 201
    _until(lambda: httpx.post(f"{second.api}/request", headers=kernel, json={
        "url": f"{live_upstream.url}/echo/3", "headers": {"X": "{{secrets.ADHOC}}"}},
    ).status_code == 200)

    httpx.delete(f"{first.api}/kernel-tokens/k1", headers=server)
    _until(lambda: httpx.get(f"{second.api}/me", headers=kernel).status_code == 403)


def test_a_replica_killed_mid_batch_loses_nothing(replicas):
    first, second = replicas
    batch = [{"key": f"K{i:04}", "value": f"value-{i:04}-abcdef"} for i in range(3000)]
    result: dict[str, object] = {}

    def send() -> None:
        try:
            result["status"] = httpx.put(f"{first.api}/secrets", headers=first.admin,
                                         json={"secrets": batch}, timeout=30).status_code
        except httpx.HTTPError as error:
            result["error"] = type(error).__name__

    thread = threading.Thread(target=send)
    thread.start()
    time.sleep(0.3)  # sealing and writing 3,000 secrets takes longer than this
    assert first.process is not None
    first.process.send_signal(signal.SIGKILL)
    thread.join(timeout=30)
    first.process.wait(timeout=30)
    names = {s["name"] for s in httpx.get(f"{second.api}/secrets", headers=second.admin,
                                          params={"kind": "all"}).json()["secrets"]}
    written = {item["key"] for item in batch} & names
    assert written in (set(), {item["key"] for item in batch}), "all of the batch or none"
    if result.get("status") == 200:
        assert len(written) == 3000, "an answered batch is all there"
    else:
        assert written == set(), "the killed replica's batch left nothing behind"
