"""Streams through the real proxy: value-blind timing, SSE events kept whole, fresh values.

Real Jupyter server, real loopback upstream, real HTTP. The timing tests compare the arrival
times of an echoed guess with a statistical test (Mann-Whitney U), never with a threshold,
and prove they have the power to see a leak by running the same measurement against a
deliberately leaky stream (the old rule: hold back a tail only while it could start a value).
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tornado.web import RequestHandler

from jupyter_secrets.boundary.scrub import Scrubber

from .helpers import JUPYTER, assert_no_canary, http

PAUSE_S = 0.12  # how long the upstream waits after echoing the guess
SAMPLES = 18  # per condition, interleaved
POWER_SAMPLES = 14
ALPHA = 1e-3  # generous: distributions "differ" only below this p


class GuessEcho(RequestHandler):
    """Echoes the request body at the end of a chunk, pauses, then ends (the attack)."""

    async def post(self, kind: str) -> None:
        guess = self.request.body
        if kind == "sse":
            self.set_header("Content-Type", "text/event-stream")
            self.write(b"data: " + guess)  # the event is not complete yet
        else:
            self.set_header("Content-Type", "text/plain")
            self.write(b"echo: " + guess)
        await self.flush()
        await asyncio.sleep(PAUSE_S)
        self.write(b"\n\ndata: done\n\n" if kind == "sse" else b"\ndone\n")


class EventsOneByOne(RequestHandler):
    """SSE events, each written in two halves; the next is sent only once the client has
    received the previous one (so a proxy that held an event back would stall)."""

    received: list[threading.Event]
    stalled: list[int]

    def initialize(self, received: list[threading.Event], stalled: list[int]) -> None:
        self.received = received
        self.stalled = stalled

    async def get(self) -> None:
        self.set_header("Content-Type", "text/event-stream")
        echo = self.request.headers.get("Authorization", "")
        for index, received in enumerate(self.received):
            payload = f"event {index}" if index != 2 else f"event 2 echoes {echo}"
            self.write(f"data: {payload[:4]}".encode())
            await self.flush()
            await asyncio.sleep(0.02)
            self.write(f"{payload[4:]}\n\n".encode())
            await self.flush()
            if not await asyncio.to_thread(received.wait, 10):
                self.stalled.append(index)


def mann_whitney_p(x: list[float], y: list[float]) -> float:
    """Two-sided p of the Mann-Whitney U test (normal approximation, tie-corrected)."""
    n1, n2 = len(x), len(y)
    pooled = sorted([(v, 0) for v in x] + [(v, 1) for v in y])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    r1 = sum(r for r, (_, group) in zip(ranks, pooled, strict=True) if group == 0)
    u = r1 - n1 * (n1 + 1) / 2
    n = n1 + n2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    z = max(abs(u - n1 * n2 / 2) - 0.5, 0) / sigma
    return math.erfc(z / math.sqrt(2))


def test_the_statistic_tells_apart_what_differs_and_not_what_does_not():
    assert mann_whitney_p([1.0, 2.0, 3.0, 4.0] * 5, [4.0, 3.0, 2.0, 1.0] * 5) == 1.0
    # U = 0 for 5 against 5: the normal approximation with continuity gives p = 0.0122.
    assert mann_whitney_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(0.01219, abs=1e-4)
    apart = mann_whitney_p([1.0 + i / 100 for i in range(10)], [2.0 + i / 100 for i in range(10)])
    assert apart < ALPHA


class LeakyStream:
    """The old, value-dependent rule: hold back a chunk's tail only while it could become a
    value. Used only to prove the timing test can fail."""

    rule = "leaky"
    idle_flushable = False

    def __init__(self, scrubber: Scrubber) -> None:
        self.scrubber = scrubber
        self.patterns = list(scrubber._replacements)
        self.held = b""

    def feed(self, chunk: bytes) -> bytes:
        buf = self.held + chunk
        cut = len(buf)
        longest = max(map(len, self.patterns))
        for start in range(max(0, len(buf) - longest + 1), len(buf)):
            tail = buf[start:]
            if any(len(p) > len(tail) and p.startswith(tail) for p in self.patterns):
                cut = start
                break
        self.held = buf[cut:]
        return self.scrubber.scrub_bytes(buf[:cut])

    def flush(self) -> bytes:
        return b""

    def finish(self) -> bytes:
        out, self.held = self.scrubber.scrub_bytes(self.held), b""
        return out


@pytest.fixture
def guess_upstream(upstream: Any, up_connection: Any) -> Any:
    upstream.app.add_handlers(r".*", [(r"/guess/(sse|plain)", GuessEcho)])
    return upstream


def arrival_times(url: str, headers: dict[str, str], guesses: list[bytes],
                  outputs: list[bytes]) -> list[float]:
    """Seconds from sending each guess to the moment its echo is complete at the client."""
    times = []
    with httpx.Client(timeout=30) as client:
        for guess in guesses:
            started = time.perf_counter()
            seen = b""
            arrived = None
            with client.stream("POST", url, headers=headers, content=guess) as response:
                for chunk in response.iter_raw():
                    seen += chunk
                    if arrived is None and guess in seen:
                        arrived = time.perf_counter() - started
            assert arrived is not None, seen
            outputs.append(seen)
            times.append(arrived)
    return times


async def compare(kind: str, server_url: str, auth: dict[str, str], canary: str,
                  samples: int) -> tuple[float, list[float], list[float]]:
    right = canary[:24].encode()  # a correct prefix of the injected value
    # Same length, wrong, and ending in a byte no encoded form contains, so that even the
    # leaky stream never holds it back.
    wrong = right[:-1] + b"!"
    url = f"{server_url}/proxy/up/guess/{kind}"
    outputs: list[bytes] = []
    await asyncio.to_thread(arrival_times, url, auth, [right, wrong], outputs)  # warm up
    # Interleaved in ABBA order, so drifts and the order within a pair hit both alike.
    guesses = [right, wrong, wrong, right] * (samples // 2)
    times = await asyncio.to_thread(arrival_times, url, auth, guesses, outputs)
    assert_no_canary(canary, *outputs, where=f"{kind} echoes")
    right_times = [t for t, g in zip(times, guesses, strict=True) if g is right]
    wrong_times = [t for t, g in zip(times, guesses, strict=True) if g is wrong]
    return mann_whitney_p(right_times, wrong_times), right_times, wrong_times


@pytest.mark.parametrize("kind", ["sse", "plain"])
async def test_an_echoed_guess_arrives_when_it_would_whatever_its_prefix(
    server_log, kind, guess_upstream, server_url, auth, canary
):
    p, right, wrong = await compare(kind, server_url, auth, canary, SAMPLES)
    assert p > ALPHA, (p, sorted(right), sorted(wrong))
    assert_no_canary(canary, server_log(), where="server log")


@pytest.mark.parametrize("kind", ["sse", "plain"])
async def test_the_timing_test_catches_a_value_dependent_stream(
    kind, guess_upstream, server_url, auth, canary, monkeypatch
):
    monkeypatch.setattr(Scrubber, "stream", lambda self, content_type=None: LeakyStream(self))
    p, right, wrong = await compare(kind, server_url, auth, canary, POWER_SAMPLES)
    assert p < ALPHA, (p, sorted(right), sorted(wrong))


async def test_every_sse_event_is_relayed_whole_as_soon_as_it_completes(
    server_log, upstream, up_connection, server_url, auth, canary
):
    received = [threading.Event() for _ in range(5)]
    stalled: list[int] = []
    upstream.app.add_handlers(r".*", [(r"/events", EventsOneByOne,
                                       {"received": received, "stalled": stalled})])

    def read() -> list[bytes]:
        chunks: list[bytes] = []
        seen = b""
        with httpx.Client(timeout=30) as client, client.stream(
            "GET", f"{server_url}/proxy/up/events", headers=auth
        ) as response:
            for chunk in response.iter_raw():
                chunks.append(chunk)
                seen += chunk
                for index, event in enumerate(received):
                    if f"data: event {index}".encode() in seen:
                        event.set()
        return chunks

    chunks = await asyncio.to_thread(read)
    assert stalled == [], "the proxy held a complete event back"
    assert len(chunks) == 5, chunks
    for index, chunk in enumerate(chunks):
        assert chunk.startswith(f"data: event {index}".encode()) and chunk.endswith(b"\n\n")
        assert chunk.count(b"data:") == 1, "one event per chunk, never a half"
    assert chunks[2] == b"data: event 2 echoes Bearer [REDACTED:UP_CONNECTION_KEY]\n\n"
    assert_no_canary(canary, *chunks, server_log())


async def test_a_replaced_value_is_used_by_the_very_next_call(
    server_log, example_token, upstream, api, canary, responses
):
    call = {"url": f"{upstream.url}/echo/x",
            "headers": {"Authorization": "Bearer {{secrets.EXAMPLE_TOKEN}}"}}
    for round_ in range(3):
        new = f"{canary}-v{round_}"
        assert (await api("PUT", "secrets", "EXAMPLE_TOKEN", body={"value": new}))[0] == 200
        status, body = await api("POST", "request", body=call)
        assert status == 200, body
        assert upstream.requests[-1].headers["Authorization"] == f"Bearer {new}"
        assert body["headers"]["Authorization"] == "Bearer [REDACTED:EXAMPLE_TOKEN]"
    assert_no_canary(canary, *responses, server_log())


async def test_a_cli_write_reaches_the_running_proxy_within_a_second(
    example_token, upstream, api, canary, responses, store_path: Path, key_file: Path,
    tmp_path: Path
):
    call = {"url": f"{upstream.url}/echo/x",
            "headers": {"Authorization": "Bearer {{secrets.EXAMPLE_TOKEN}}"}}
    assert (await api("POST", "request", body=call))[0] == 200  # the index holds the value
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(JUPYTER_SECRETS_STORE_URL=f"sqlite:///{store_path}",
               JUPYTER_SECRETS_KEY_FILE=str(key_file),
               JUPYTER_CONFIG_DIR=str(tmp_path / "cli-config"),
               JUPYTER_DATA_DIR=str(tmp_path / "cli-data"))
    new = f"{canary}-from-cli"
    result = await asyncio.to_thread(
        subprocess.run, [JUPYTER, "secrets", "set", "EXAMPLE_TOKEN"], input=new, env=env,
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    await asyncio.sleep(1.0)
    status, body = await api("POST", "request", body=call)
    assert status == 200, body
    assert upstream.requests[-1].headers["Authorization"] == f"Bearer {new}"
    assert body["headers"]["Authorization"] == "Bearer [REDACTED:EXAMPLE_TOKEN]"
    assert_no_canary(canary, *responses, result.stdout, result.stderr)


async def test_plain_streams_still_arrive_in_full_and_scrubbed(
    up_connection, upstream, server_url, auth, canary
):
    r = await http("GET", f"{server_url}/proxy/up/echo/anything", headers=auth)
    assert r.status_code == 200
    assert r.json()["headers"]["Authorization"] == "Bearer [REDACTED:UP_CONNECTION_KEY]"
    assert_no_canary(canary, r.text)
