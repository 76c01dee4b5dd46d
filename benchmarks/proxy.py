"""The proxy side by side: direct, a plain relay, jupyter-server-proxy and ours, one run.

Starts, each as its own process on 127.0.0.1: an OpenAI-style upstream, a plain tornado +
httpx relay (the floor for a Python proxy), a Jupyter server with jupyter-server-proxy (its
``/proxy/<port>/`` route) and a Jupyter server with jupyter-secrets (``/proxy/<connection>/``
with a kernel token, the connection holding the upstream's key). Then, interleaving the
four paths round by round so drift hits them alike, it measures:

* latency of a non-streamed chat completion, one call at a time (added p50 and p99 over
  direct);
* throughput with 32 concurrent clients against an upstream that answers after a fixed
  think time (ratio to direct);
* SSE: whether every upstream event arrives as its own HTTP chunk, time to first byte, the
  gaps between events (the upstream sends one every ``gap_ms``), 64 concurrent streams, and
  the server's RSS growth per open stream.

It prints the table of issue 12 and each target met or missed. The client sends what the
OpenAI Python SDK sends (``Accept: application/json`` even when streaming: with it,
jupyter-server-proxy buffers a stream; it streams only for ``Accept: text/event-stream``).

    python benchmarks/proxy.py [--quick] [--think-ms 200] [--profile DIR]

``--profile DIR`` then records our server, and the relay for comparison, with py-spy while 32
clients call it with no think time (a flame graph and collapsed stacks in DIR), and prints
where the CPU per call goes. See benchmarks/README.md for the method and the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _http import Connection, Response  # noqa: E402
from _report import CpuShare, Machine, percentile, status_line  # noqa: E402

PY = sys.executable
HOST = "127.0.0.1"
SDK_HEADERS = [  # what openai-python sends with every call, besides auth and length
    ("Accept", "application/json"), ("Content-Type", "application/json"),
    ("User-Agent", "OpenAI/Python 1.99.0"), ("X-Stainless-Lang", "python"),
    ("X-Stainless-Package-Version", "1.99.0"), ("X-Stainless-OS", "Linux"),
    ("X-Stainless-Arch", "x64"), ("X-Stainless-Runtime", "CPython"),
    ("X-Stainless-Runtime-Version", "3.11.7"), ("X-Stainless-Async", "false"),
    ("X-Stainless-Retry-Count", "0"), ("X-Stainless-Read-Timeout", "600"),
    ("Accept-Encoding", "gzip, deflate"), ("Connection", "keep-alive"),
]
OVERHEAD = "x-jupyter-secrets-overhead-ms"
MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hello to the benchmark."}]


@dataclass
class Settings:
    calls: int = 1000  # sequential calls per path
    idle_calls: int = 200  # sequential calls per path, each after IDLE_S of quiet
    streams: int = 40  # sequential SSE streams per path (the first-byte median of 40)
    events: int = 20  # events per stream, DONE not counted
    gap_ms: float = 10.0
    concurrent_streams: int = 64
    held_streams: int = 64
    clients: int = 32
    think_ms: float = 200.0
    seconds: float = 4.0  # per path per throughput round
    peak_seconds: float = 2.0  # per path per round of the no-think-time load
    rounds: int = 2  # throughput, peak and 64-stream rounds


QUICK = Settings(calls=200, idle_calls=50, streams=5, seconds=2.0, peak_seconds=1.0, rounds=1)
IDLE_S = 0.010  # the quiet before each "idle" call: an SSE stream's gap, a sparse caller


@dataclass
class Target:
    key: str
    label: str
    port: int
    path: str
    headers: list[tuple[str, str]]
    pid: int | None  # the process whose RSS grows with open streams
    latency: list[float] = field(default_factory=list)
    idle_latency: list[float] = field(default_factory=list)  # each call after 10 ms of quiet
    overhead: list[float] = field(default_factory=list)  # ours: X-Jupyter-Secrets-Overhead-Ms
    throughput: list[float] = field(default_factory=list)  # calls/s, one per round
    peak: list[float] = field(default_factory=list)  # calls/s without think time
    cpu_ms: list[float] = field(default_factory=list)  # server CPU per call at peak
    streams: list[Response] = field(default_factory=list)
    concurrent: list[tuple[int, int]] = field(default_factory=list)  # (complete, started)
    kib_per_stream: float | None = None

    async def call(self, conn: Connection, body: dict[str, Any]) -> Response:
        payload = json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES, **body}).encode()
        return await conn.request("POST", self.path, [*SDK_HEADERS, *self.headers], payload)


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Processes:
    """Every server this run starts; stopped (by their own ids) when the run ends."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None,
              ) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("wb")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp,
                                env={**os.environ, **(env or {})})
        self.started.append(proc)
        return proc

    def log_tail(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.started:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before it listened")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not listen on port {port} within {timeout:.0f} s")


def jupyter_server(procs: Processes, name: str, extension: str, port: int, token: str,
                   env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A real ``jupyter server`` with only ``extension`` enabled (others switched off)."""
    from jupyter_core.paths import jupyter_config_path
    from jupyter_server.extension.config import ExtensionConfigManager

    home = procs.tmp / name
    (home / "config").mkdir(parents=True)
    found = ExtensionConfigManager(read_config_path=jupyter_config_path())
    extensions = {ext: False for ext in found.get_jpserver_extensions()}
    extensions[extension] = True
    config = {"ServerApp": {"jpserver_extensions": extensions, "open_browser": False,
                            "port_retries": 0, "ip": HOST, "port": port,
                            "root_dir": str(home)},
              "IdentityProvider": {"token": token}}
    (home / "config" / "jupyter_server_config.json").write_text(json.dumps(config))
    env = {**env, "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_DATA_DIR": str(home / "data"), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    args = [PY, "-m", "jupyter_server"] + (["--allow-root"] if os.getuid() == 0 else [])
    return procs.start(name, args, env)


def kernel_token(port: int, token: str, server_pid: int) -> tuple[str, str]:
    """Start a kernel through the API; read the token our extension put in its environment."""
    import httpx
    import psutil

    base = f"http://{HOST}:{port}"
    auth = {"Authorization": f"token {token}"}
    kernel = httpx.post(f"{base}/api/kernels", headers=auth, json={}, timeout=60)
    kernel.raise_for_status()
    kernel_id = kernel.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for child in psutil.Process(server_pid).children(recursive=True):
            try:
                value = child.environ().get("JUPYTER_SECRETS_TOKEN")
            except (psutil.Error, OSError):
                continue
            if value:
                return kernel_id, value
        time.sleep(0.2)
    raise SystemExit("the kernel did not start with a JUPYTER_SECRETS_TOKEN")


def wait_api(url: str, headers: dict[str, str], proc: subprocess.Popen[bytes], what: str) -> None:
    import httpx

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, headers=headers, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not answer {url}")


def start_all(procs: Processes, auth: str) -> tuple[list[Target], dict[str, Any]]:
    import httpx

    key = f"sk-bench-{secrets.token_hex(20)}"
    token = secrets.token_hex(24)
    ports = {name: free_port() for name in ("upstream", "relay", "jrelay", "jsp", "ours")}
    upstream = procs.start("upstream", [PY, str(HERE / "_servers.py"), "upstream",
                                        "--port", str(ports["upstream"]), "--key", key])
    upstream_url = f"http://{HOST}:{ports['upstream']}"
    relay = procs.start("relay", [PY, str(HERE / "_servers.py"), "relay", "--port",
                                  str(ports["relay"]), "--upstream", upstream_url, "--key", key])
    jrelay = jupyter_server(procs, "jrelay", "_jupyter_relay", ports["jrelay"], token, {
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "BENCH_UPSTREAM": upstream_url, "BENCH_KEY": key})
    jsp = jupyter_server(procs, "jsp", "jupyter_server_proxy", ports["jsp"], token, {})
    master = subprocess.check_output([PY, "-m", "jupyter_secrets.cli", "generate-key"],
                                     text=True).strip()
    ours = jupyter_server(procs, "ours", "jupyter_secrets", ports["ours"], token, {
        "JUPYTER_SECRETS_KEY": master,
        "JUPYTER_SECRETS_STORE_URL": f"sqlite:///{procs.tmp}/secrets.db"})
    for name, proc in (("upstream", upstream), ("relay", relay)):
        wait_port(ports[name], proc, name)
    admin = {"Authorization": f"token {token}"}
    for name, proc in (("jrelay", jrelay), ("jsp", jsp), ("ours", ours)):
        wait_api(f"http://{HOST}:{ports[name]}/api/status", admin, proc, f"jupyter server {name}")
    created = httpx.post(f"http://{HOST}:{ports['ours']}/api/secrets/v1/connections",
                         headers=admin, timeout=30, json={
                             "name": "bench", "preset": "openai",
                             "base_url": f"{upstream_url}/v1", "value": key})
    if created.status_code != 201:
        raise SystemExit(f"creating the connection failed: {created.status_code} {created.text}")
    kernel_id, ktoken = kernel_token(ports["ours"], token, ours.pid)
    ours_auth = f"Bearer {ktoken}" if auth == "kernel" else f"token {token}"
    chat = "/v1/chat/completions"
    targets = [
        Target("direct", "direct (no proxy)", ports["upstream"], chat,
               [("Authorization", f"Bearer {key}")], upstream.pid),
        Target("relay", "plain tornado + httpx relay (the floor)", ports["relay"], chat, [],
               relay.pid),
        Target("jrelay", "the same relay in jupyter_server", ports["jrelay"],
               f"/bench-relay{chat}", [("Authorization", f"token {token}")], jrelay.pid),
        Target("jsp", f"jupyter-server-proxy {_version('jupyter-server-proxy')}", ports["jsp"],
               f"/proxy/{ports['upstream']}{chat}?token={token}",
               [("Authorization", f"Bearer {key}")], jsp.pid),
        Target("ours", f"jupyter-secrets proxy ({auth} token)", ports["ours"],
               "/api/secrets/v1/proxy/bench/chat/completions",
               [("Authorization", ours_auth)], ours.pid),
    ]
    info = {"upstream_port": ports["upstream"], "ours_port": ports["ours"], "token": token,
            "kernel_id": kernel_id, "ours_pid": ours.pid}
    return targets, info


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


# -- phases ------------------------------------------------------------------------------------


def check(response: Response, what: str) -> Response:
    if response.status != 200 or not response.complete:
        raise SystemExit(f"{what}: status {response.status}, complete={response.complete}: "
                         f"{response.body[:300]!r}")
    return response


async def warm_up(targets: list[Target], s: Settings) -> None:
    for t in targets:
        conn = Connection(HOST, t.port)
        for _ in range(30):
            check(await t.call(conn, {}), f"{t.key} warm-up")
        for _ in range(2):
            check(await t.call(conn, {"stream": True, "bench": {"events": 3, "gap_ms": 1}}),
                  f"{t.key} stream warm-up")
        await conn.close()


def rounds_of(targets: list[Target], n: int) -> list[list[Target]]:
    """n rounds, each visiting every target once, in a fresh random order."""
    rng = random.Random(12)
    out = []
    for _ in range(n):
        order = list(targets)
        rng.shuffle(order)
        out.append(order)
    return out


async def phase_latency(targets: list[Target], s: Settings) -> None:
    batch = 25
    conns = {t.key: Connection(HOST, t.port) for t in targets}
    for order in rounds_of(targets, max(1, s.calls // batch)):
        for t in order:
            for _ in range(batch):
                response = check(await t.call(conns[t.key], {}), t.key)
                t.latency.append(response.total_ms)
                if OVERHEAD in response.headers:
                    t.overhead.append(float(response.headers[OVERHEAD]))
        gc.collect()
    for conn in conns.values():
        await conn.close()


async def phase_idle(targets: list[Target], s: Settings) -> None:
    """The latency phase with 10 ms of quiet before each call, as an SSE stream's start or a
    notebook calling now and then meets the proxy: every process on the path has gone to
    sleep, and each hop pays for waking the next one."""
    batch = 10
    conns = {t.key: Connection(HOST, t.port) for t in targets}
    for order in rounds_of(targets, max(1, s.idle_calls // batch)):
        for t in order:
            for _ in range(batch):
                await asyncio.sleep(IDLE_S)
                t.idle_latency.append(check(await t.call(conns[t.key], {}), t.key).total_ms)
    for conn in conns.values():
        await conn.close()


async def phase_streams(targets: list[Target], s: Settings) -> None:
    body = {"stream": True, "bench": {"events": s.events, "gap_ms": s.gap_ms}}
    conns = {t.key: Connection(HOST, t.port) for t in targets}
    for order in rounds_of(targets, s.streams):
        for t in order:
            t.streams.append(check(await t.call(conns[t.key], body), f"{t.key} stream"))
    for conn in conns.values():
        await conn.close()


async def _one_stream(t: Target, body: dict[str, Any]) -> Response | None:
    conn = Connection(HOST, t.port)
    try:
        return await asyncio.wait_for(t.call(conn, body), 60)
    except Exception:  # refused, cut or timed out: counted as not complete
        return None
    finally:
        await conn.close()


async def phase_concurrent_streams(targets: list[Target], s: Settings) -> None:
    body = {"stream": True, "bench": {"events": s.events, "gap_ms": s.gap_ms}}
    for order in rounds_of(targets, s.rounds):
        for t in order:
            results = await asyncio.gather(*(_one_stream(t, body)
                                             for _ in range(s.concurrent_streams)))
            ok = sum(1 for r in results if r is not None and r.status == 200 and r.complete
                     and len(sse_events(r)) == s.events + 1)
            t.concurrent.append((ok, s.concurrent_streams))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def _upstream_held(port: int) -> int:
    conn = Connection(HOST, port)
    try:
        return int(json.loads((await conn.request("GET", "/stats")).body)["held"])
    finally:
        await conn.close()


async def phase_memory(targets: list[Target], s: Settings, upstream_port: int) -> None:
    body = {"stream": True, "bench": {"hold": True}}
    for t in targets:
        if t.key == "direct" or t.pid is None:
            continue
        gc.collect()
        await asyncio.sleep(0.5)
        before = rss_kib(t.pid)
        tasks = [asyncio.ensure_future(_one_stream(t, body)) for _ in range(s.held_streams)]
        deadline = time.monotonic() + 30
        while await _upstream_held(upstream_port) < s.held_streams:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # let the first event reach the clients
        held = await _upstream_held(upstream_port)
        during = rss_kib(t.pid)
        conn = Connection(HOST, upstream_port)
        await conn.request("POST", "/release", [], b"")
        await conn.close()
        await asyncio.gather(*tasks)
        t.kib_per_stream = (during - before) / max(1, held)


async def _client_loop(t: Target, body: dict[str, Any], delay: float, window: tuple[float, float],
                       done: list[int]) -> None:
    """Start after ``delay``, then call back to back; count the calls ending in ``window``."""
    await asyncio.sleep(delay)
    conn = Connection(HOST, t.port)
    try:
        while time.perf_counter() < window[1]:
            response = await t.call(conn, body)
            if not (response.status == 200 and response.complete):
                done[1] += 1
                continue
            done[2] += 1
            if window[0] <= time.perf_counter() <= window[1]:
                done[0] += 1
    except Exception:  # refused or cut: counted as an error
        done[1] += 1
    finally:
        await conn.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Load:
    calls: int  # completed within the window
    errors: int
    seconds: float  # the window
    cpu_s: float  # the server process's CPU over the whole load
    served: int  # every call completed, in the window or not (they all used that CPU)

    @property
    def rate(self) -> float:
        return self.calls / self.seconds


async def load(t: Target, clients: int, seconds: float, think_ms: float) -> Load:
    """``clients`` keep-alive clients, each calling as soon as its last call returned.

    With a think time, clients start spread over one think time (as independent users
    would, not all in the same millisecond) and calls are counted after one more.
    """
    body = {"bench": {"delay_ms": think_ms}} if think_ms else {}
    think = think_ms / 1000
    rng = random.Random(7)
    done = [0, 0, 0]
    cpu = cpu_seconds(t.pid) if t.pid else 0.0
    start = time.perf_counter() + 2 * think
    await asyncio.gather(*(_client_loop(t, body, rng.uniform(0, think), (start, start + seconds),
                                        done) for _ in range(clients)))
    cpu_s = (cpu_seconds(t.pid) - cpu) if t.pid else 0.0
    return Load(done[0], done[1], seconds, cpu_s, done[2])


async def phase_throughput(targets: list[Target], s: Settings) -> dict[str, int]:
    errors: dict[str, int] = {}
    for order in rounds_of(targets, s.rounds):
        for t in order:
            gc.collect()
            result = await load(t, s.clients, s.seconds, s.think_ms)
            t.throughput.append(result.rate)
            errors[t.key] = errors.get(t.key, 0) + result.errors
        for t in order[::-1]:
            gc.collect()
            result = await load(t, s.clients, s.peak_seconds, 0)
            t.peak.append(result.rate)
            t.cpu_ms.append(result.cpu_s * 1000 / max(1, result.served))
            errors[t.key] = errors.get(t.key, 0) + result.errors
    return errors


# -- analysis ----------------------------------------------------------------------------------


def sse_events(r: Response) -> list[float]:
    """When each SSE event (``...\\n\\n``) was complete at the client."""
    times, buffer = [], b""
    for arrived, data in r.chunks:
        buffer += data
        while b"\n\n" in buffer:
            _, buffer = buffer.split(b"\n\n", 1)
            times.append(arrived)
    return times


def own_chunks(r: Response) -> bool:
    """Every HTTP chunk holds exactly one whole event."""
    return r.chunked and all(data.count(b"\n\n") == 1 and data.endswith(b"\n\n")
                             for _, data in r.chunks)


@dataclass
class SSEStats:
    own: int  # streams whose every event arrived as its own chunk
    total: int
    ttfb_p50: float
    gap_dev_p50: float  # |observed gap - upstream gap|, ms
    gap_dev_p95: float
    first_after_last: bool  # buffered: the first byte came only with the last event


def sse_stats(t: Target, s: Settings) -> SSEStats:
    devs: list[float] = []
    for r in t.streams:
        times = sse_events(r)
        devs += [abs((b - a) * 1000 - s.gap_ms) for a, b in itertools.pairwise(times)]
    ttfb = [r.first_byte_ms for r in t.streams]
    buffered = all(r.chunks and r.chunks[0][0] >= sse_events(r)[-1] - 1e-4 for r in t.streams)
    return SSEStats(sum(own_chunks(r) for r in t.streams), len(t.streams),
                    percentile(ttfb, 50), percentile(devs, 50), percentile(devs, 95), buffered)


def report(targets: list[Target], s: Settings, machine: Machine, errors: dict[str, int]) -> None:
    by = {t.key: t for t in targets}
    direct = by["direct"]
    d50, d99 = percentile(direct.latency, 50), percentile(direct.latency, 99)
    dtp = sum(direct.throughput)
    dsse = sse_stats(direct, s)
    print(machine.describe())
    print(f"latency: {s.calls} sequential non-streamed chat completions per path; throughput: "
          f"{s.clients} keep-alive clients, upstream think time {s.think_ms:g} ms, "
          f"{s.rounds} x {s.seconds:g} s per path; SSE: {s.events} events + [DONE], one every "
          f"{s.gap_ms:g} ms, {s.streams} streams per path; all interleaved.")
    print(f"direct: p50 {d50:.2f} ms, p99 {d99:.2f} ms, {dtp / s.rounds:.0f} calls/s at "
          f"{s.clients} clients, SSE first byte {dsse.ttfb_p50:.2f} ms")
    idle50 = {t.key: percentile(t.idle_latency, 50) for t in targets}
    print(f"a call after {IDLE_S * 1000:g} ms of quiet (how an SSE stream starts): direct p50 "
          f"{idle50['direct']:.2f} ms; added p50 " + ", ".join(
              f"{t.key} {idle50[t.key] - idle50['direct']:+.2f} ms" for t in targets[1:])
          + " (each hop wakes a sleeping process)\n")
    rows = [("path", "added p50 over direct", "added p99", f"throughput at {s.clients} clients "
             "/ direct", "SSE stream")]
    stats: dict[str, dict[str, Any]] = {}
    for t in targets[1:]:
        sse = sse_stats(t, s)
        a50 = percentile(t.latency, 50) - d50
        a99 = percentile(t.latency, 99) - d99
        ratio = sum(t.throughput) / dtp
        if sse.own == sse.total:
            stream = f"every chunk kept, first byte {sse.ttfb_p50 - dsse.ttfb_p50:+.1f} ms"
        elif sse.first_after_last:
            stream = "buffered whole: first byte after the last"
        else:
            stream = f"chunks merged or split in {sse.total - sse.own}/{sse.total} streams"
        stats[t.key] = {"a50": a50, "a99": a99, "ratio": ratio, "sse": sse}
        rows.append((t.label, f"{a50:+.2f} ms", f"{a99:+.2f} ms", f"{ratio:.2f}", stream))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for i, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print()
    print(f"{'path':<42} {'SSE first byte':>14} {'gap error p50/p95':>17} {'64 streams':>10} "
          f"{'KiB/stream':>10} {'peak calls/s':>12} {'CPU ms/call':>11} {'errors':>6}")
    for t in targets:
        sse = sse_stats(t, s)
        complete = f"{min(c for c, _ in t.concurrent)}/{s.concurrent_streams}"
        kib = "-" if t.kib_per_stream is None else f"{t.kib_per_stream:.0f}"
        gaps = f"{sse.gap_dev_p50:.2f}/{sse.gap_dev_p95:.2f} ms"
        print(f"{t.label:<42} {sse.ttfb_p50:>11.2f} ms {gaps:>17} {complete:>10} {kib:>10} "
              f"{sum(t.peak) / len(t.peak):>12.0f} {sum(t.cpu_ms) / len(t.cpu_ms):>11.2f} "
              f"{errors.get(t.key, 0):>6}")
    print(f"(peak: {s.clients} clients, no think time; CPU ms/call: the server process's CPU "
          "(all threads) per call at peak, the upstream's not included)")
    overhead = by["ours"].overhead
    if overhead:
        print(f"jupyter-secrets: time spent before the upstream call (its {OVERHEAD} header): "
              f"p50 {percentile(overhead, 50):.2f} ms, p99 {percentile(overhead, 99):.2f} ms")
    print("\nTargets (jupyter-secrets proxy, against the relay and direct in this run):")
    ours, relay, jsp, jrelay = stats["ours"], stats["relay"], stats["jsp"], stats["jrelay"]
    sse: SSEStats = ours["sse"]
    lines = [
        (ours["a50"] <= 1.15 * relay["a50"], "added p50 within 1.15x of the relay's",
         f"{ours['a50']:.2f} ms vs {relay['a50']:.2f} ms "
         f"({ours['a50'] / relay['a50']:.2f}x)" if relay["a50"] > 0 else "relay adds nothing"),
        (ours["a99"] <= 1.5 * relay["a99"], "added p99 within 1.5x of the relay's",
         f"{ours['a99']:.2f} ms vs {relay['a99']:.2f} ms "
         f"({ours['a99'] / relay['a99']:.2f}x)" if relay["a99"] > 0 else "relay adds nothing"),
        (ours["ratio"] >= 0.9, f"throughput at {s.clients} clients >= 0.9x direct",
         f"{ours['ratio']:.2f}x"),
        (ours["a50"] < jsp["a50"] and ours["a99"] < jsp["a99"] and ours["ratio"] > jsp["ratio"],
         "ahead of jupyter-server-proxy on all three",
         f"p50 {ours['a50']:.2f} vs {jsp['a50']:.2f} ms, p99 {ours['a99']:.2f} vs "
         f"{jsp['a99']:.2f} ms, throughput {ours['ratio']:.2f} vs {jsp['ratio']:.2f}"),
        (sse.own == sse.total, "SSE: every upstream chunk relayed as its own chunk",
         f"{sse.own}/{sse.total} streams"),
        (sse.ttfb_p50 - dsse.ttfb_p50 <= 2.0, "SSE: time to first byte within 2 ms of direct",
         f"{sse.ttfb_p50:.2f} ms vs {dsse.ttfb_p50:.2f} ms ({sse.ttfb_p50 - dsse.ttfb_p50:+.2f}; "
         f"the relay {relay['sse'].ttfb_p50 - dsse.ttfb_p50:+.2f})"),
        (sse.gap_dev_p95 - dsse.gap_dev_p95 <= 1.0,
         "SSE: gaps between chunks kept (p95 error within 1 ms of direct's)",
         f"p95 error {sse.gap_dev_p95:.2f} ms vs direct {dsse.gap_dev_p95:.2f} ms"),
        (min(c for c, _ in by["ours"].concurrent) == s.concurrent_streams,
         f"SSE: {s.concurrent_streams} concurrent streams complete",
         f"{min(c for c, _ in by['ours'].concurrent)}/{s.concurrent_streams} (worst round)"),
        (None, "the jupyter_server floor: the same relay as an extension adds",
         f"p50 {jrelay['a50']:+.2f} ms, p99 {jrelay['a99']:+.2f} ms, throughput "
         f"{jrelay['ratio']:.2f}; ours is {ours['a50'] / jrelay['a50']:.2f}x its added p50"
         if jrelay["a50"] > 0 else "nothing"),
        (None, "SSE: memory per open stream (server RSS growth)",
         f"{by['ours'].kib_per_stream:.0f} KiB (relay {by['relay'].kib_per_stream:.0f}, "
         f"jupyter-server-proxy {by['jsp'].kib_per_stream:.0f})"),
    ]
    for ok, what, numbers in lines:
        print(status_line(ok, what, numbers))


# -- main --------------------------------------------------------------------------------------


async def measure(targets: list[Target], s: Settings, info: dict[str, Any],
                  ) -> tuple[dict[str, int], str]:
    gc.freeze()
    await warm_up(targets, s)
    share = CpuShare([os.getpid(), *(t.pid for t in targets if t.pid)])
    await phase_latency(targets, s)
    await phase_idle(targets, s)
    await phase_memory(targets, s, info["upstream_port"])
    await phase_streams(targets, s)
    await phase_concurrent_streams(targets, s)
    errors = await phase_throughput(targets, s)
    return errors, share.describe()


async def profile(targets: list[Target], s: Settings, out: Path, seconds: float) -> None:
    """py-spy on our server, then on the relay, each under the peak load (no think time)."""
    from _profile import profile_under_load

    by = {t.key: t for t in targets}

    def under_load(t: Target) -> Callable[[float], Awaitable[Load]]:
        return lambda duration: load(t, s.clients, duration, 0)

    await profile_under_load(out, seconds, [(k, by[k].pid or 0, under_load(by[k]))
                                            for k in ("ours", "relay")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (~1 minute)")
    parser.add_argument("--think-ms", type=float, help="upstream think time under load")
    parser.add_argument("--auth", choices=["kernel", "server"], default="kernel",
                        help="call our proxy with a kernel's token (as an SDK in a kernel "
                        "does) or with the Jupyter server's token")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="afterwards, record our server under load with py-spy into DIR")
    parser.add_argument("--profile-seconds", type=float, default=15)
    args = parser.parse_args()
    s = QUICK if args.quick else Settings()
    if args.think_ms is not None:
        s.think_ms = args.think_ms
    machine = Machine.here()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        procs = Processes(Path(tmp))
        try:
            targets, info = start_all(procs, args.auth)
            errors, noise = asyncio.run(measure(targets, s, info))
            report(targets, s, machine, errors)
            print(noise)
            if args.profile:
                asyncio.run(profile(targets, s, args.profile, args.profile_seconds))
        except BaseException:
            for name in ("upstream", "relay", "jrelay", "jsp", "ours"):
                tail = procs.log_tail(name)
                if tail.strip():
                    print(f"--- {name}.log (tail) ---\n{tail}", file=sys.stderr)
            raise
        finally:
            procs.stop()
    print(f"\n(run took {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
