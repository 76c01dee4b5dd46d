"""Profile a running server under load with py-spy, and say where its time goes.

``profile_under_load`` records each server while a load runs (a flame graph SVG of the first,
collapsed stacks of all); ``summarize`` sorts the samples into buckets (worker-thread hops,
SQLite, Scrubber, auth, headers, tornado, httpx, logging...) and prints, side by side, each
bucket's share and its CPU milliseconds per call. py-spy samples every thread that is on a
CPU (or waiting for one), so system calls and native code count too.

    python benchmarks/_profile.py DIR/ours.txt DIR/relay.txt   # summarize recordings again
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Features: a sample whose stack holds one of these frames goes to that bucket (first match in
# this order), wherever the frame sits; these are the suspects of issue 12.
FEATURES: list[tuple[str, tuple[str, ...]]] = [
    ("worker thread: SQLite reads (connection record, sealed rows)", ("store/sqlite.py",)),
    ("worker thread: opening values (AES-GCM)", ("crypto.py", "cryptography/")),
    ("worker thread: pool mechanics (queue, wake-up, GIL hand-over)",
     ("concurrent/futures/thread.py",)),
    ("event loop: worker-thread hops (submit, future callbacks, self-pipe)",
     ("run_in_executor", "ThreadPoolExecutor.submit", "_chain_future", "_copy_future_state",
      "_call_set_state", "_write_to_self", "_read_from_self", "call_soon_threadsafe",
      "wrap_future", "SecretsHandler.call ")),
    ("Scrubber construction (per call)", ("Scrubber.__init__",)),
    ("scrubbing headers and body", ("ScrubStream", "scrub_text", "scrub_bytes",
                                    "scrub_headers")),
    ("auth and identity (kernel token, user, authorizer)",
     ("get_current_user", "get_user", "server/identity.py", "services/tokens.py",
      "is_authorized", "services/access.py", "require_reader", "identity_provider",
      "jupyter_server/auth/")),
    ("audit and usage bookkeeping", ("services/audit.py", "UsageRecorder", "_audit_call",
                                     "split_destination")),
    ("egress checks and request build (placeholders, hosts, CallSpec)",
     ("Egress._build", "_check_destination", "_host_port", "boundary/hosts.py",
      "boundary/placeholders.py", "address_policy", "CallSpec", "normalize_host_pattern",
      "connect_pinned", "resolve_pinned")),
    ("our header handling (forwarded and relayed headers)",
     ("_forwarded_headers", "add_header", "set_header", "clear_header",
      "Headers.multi_items")),
    ("jupyter_server per-request log and metrics (log_request, prometheus)",
     ("log_request", "prometheus_client/")),
    ("logging", ("logging/", "ScrubbingFilter")),
    ("httpcore pool bookkeeping (checks every pooled connection on each request)",
     ("_assign_requests_to_connections", "has_expired", "AsyncConnectionPool._close_connections",
      "is_socket_readable")),
]
# Layers: otherwise the sample goes to the library of the frame nearest its leaf that is not
# a generic helper (asyncio's socket write under httpcore counts as httpcore).
GENERIC = ("asyncio/", "selectors.py", "contextlib.py", "socket.py", "ssl.py", "threading.py",
           "functools.py", "typing.py", "enum.py", "abc.py", "re/", "ipaddress.py",
           "urllib/", "json/", "weakref.py", "_weakrefset.py", "<frozen", "copy.py", "types.py",
           "collections/", "http/", "email/", "datetime.py", "uuid.py", "base64.py")
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("outbound HTTP client (ours: egress/http1.py, h11; the relay: httpx, httpcore, anyio)",
     ("egress/http1.py", "egress/asyncio_stream.py", "httpx/", "httpcore/", "h11/", "anyio/",
      "sniffio/")),
    ("jupyter_server handler (prepare, headers, CallContext)",
     ("jupyter_server/", "jupyter_events/", "traitlets/")),
    ("tornado HTTP server (parse, route, write, flush)", ("tornado/",)),
    ("our code, other", ("jupyter_secrets/",)),
    ("the relay's handler (benchmark code)", ("_servers.py",)),
]
EVENT_LOOP = "event loop (select, callbacks, socket I/O)"
OTHER = "other"


def _frames(stack: str) -> list[str]:
    return [f for f in stack.split(";") if not f.startswith(("thread (", "process "))]


def bucket_of(frames: list[str]) -> str:
    worker = any(f.startswith("_worker (concurrent/futures/thread.py") for f in frames)
    for name, patterns in FEATURES:
        if name.startswith("worker thread") != worker:
            continue
        if any(p in frame for frame in frames for p in patterns):
            return name
    for frame in reversed(frames):
        for name, patterns in LAYERS:
            if any(p in frame for p in patterns):
                return name
        if not any(g in frame for g in GENERIC):
            return OTHER
    return "worker thread: other" if worker else EVENT_LOOP


@dataclass
class Profile:
    name: str
    buckets: Counter[str]
    leaves: Counter[str]
    ours: Counter[str]  # our functions, inclusive
    total: int
    cpu_ms_per_call: float | None = None

    def share(self, counter: Counter[str], key: str) -> float:
        return counter[key] / self.total if self.total else 0.0


def read_profile(raw: Path, name: str, cpu_ms_per_call: float | None = None) -> Profile:
    buckets: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = _frames(stack)
        total += n
        buckets[bucket_of(frames)] += n
        leaves[frames[-1]] += n
        for fn in {re.sub(r":\d+\)", ")", f) for f in frames if "jupyter_secrets/" in f}:
            ours[fn] += n
    return Profile(name, buckets, leaves, ours, total, cpu_ms_per_call)


def summarize(profiles: list[Profile], *, top: int = 20) -> str:
    """Buckets side by side (share of samples, and CPU ms per call), then the hot spots."""
    main = profiles[0]
    if not main.total:
        return "no samples"
    head = "  ".join(f"{p.name:>18}" for p in profiles)
    lines = [f"{'where the CPU goes (each sample in one bucket)':<76}{head}"]
    for name, _ in main.buckets.most_common():
        cells = []
        for p in profiles:
            share = p.share(p.buckets, name)
            ms = f" {share * p.cpu_ms_per_call:5.2f} ms" if p.cpu_ms_per_call else ""
            cells.append(f"{100 * share:7.1f}%{ms:>9}".rjust(18))
        lines.append(f"  {name:<74}" + "  ".join(cells))
    lines.append(f"  {'total CPU per call (server process, all threads)':<74}" + "  ".join(
        (f"{p.cpu_ms_per_call:16.2f} ms" if p.cpu_ms_per_call else " " * 18) for p in profiles))
    lines.append(f"  {'samples':<74}" + "  ".join(f"{p.total:>18}" for p in profiles))
    lines += ["", f"{main.name}: hottest functions (self time):"]
    lines += [f"  {100 * n / main.total:5.1f}%  {f}" for f, n in main.leaves.most_common(top)]
    lines += ["", f"{main.name}: our functions (on the stack):"]
    lines += [f"  {100 * n / main.total:5.1f}%  {f}" for f, n in main.ours.most_common(top)]
    return "\n".join(lines)


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: pip install -e '.[bench]'")
    return found


async def record(pid: int, path: Path, seconds: float, fmt: str,
                 run_load: Callable[[float], Awaitable[Any]]) -> Any:
    """py-spy on ``pid`` (all threads on a CPU, not pausing it) while ``run_load`` runs."""
    proc = await asyncio.create_subprocess_exec(
        _py_spy(), "record", "--pid", str(pid), "--rate", "250", "--duration",
        str(int(seconds)), "--nonblocking", "--format", fmt, "--output", str(path),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result = await run_load(seconds + 1)
    await proc.wait()
    if proc.returncode:
        raise SystemExit(f"py-spy exited with {proc.returncode}: is ptrace allowed here?")
    return result


async def profile_under_load(
    out: Path, seconds: float,
    targets: list[tuple[str, int, Callable[[float], Awaitable[Any]]]],
) -> None:
    """Record each (name, pid, load) under its load; a flame graph of the first one too.

    ``load`` returns something with ``cpu_s`` and ``served`` (CPU ms per call).
    """
    out.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before any load
    profiles = []
    for i, (name, pid, run_load) in enumerate(targets):
        if i == 0:
            await record(pid, out / f"{name}.svg", seconds, "flamegraph", run_load)
        result = await record(pid, out / f"{name}.txt", seconds, "raw", run_load)
        profiles.append(read_profile(out / f"{name}.txt", name,
                                     result.cpu_s * 1000 / max(1, result.served)))
    print(f"\nProfile under load (py-spy; flame graph {out}/{targets[0][0]}.svg, collapsed "
          f"stacks {out}/*.txt):")
    print(summarize(profiles))


if __name__ == "__main__":
    print(summarize([read_profile(Path(arg), Path(arg).stem) for arg in sys.argv[1:]]))
