"""What every benchmark prints alike: the machine, percentiles, and targets met or missed."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("jupyter-secrets", "jupyter_server", "tornado", "httpx", "httpcore",
            "jupyter-server-proxy", "cryptography")


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def status_line(ok: bool | None, what: str, numbers: str) -> str:
    mark = {True: "met   ", False: "MISSED", None: "info  "}[ok]
    return f"  [{mark}] {what}: {numbers}"


@dataclass(frozen=True)
class Machine:
    cores: int
    cpu: str
    python: str
    packages: dict[str, str]
    load: tuple[float, float, float]

    @classmethod
    def here(cls) -> Machine:
        cpu = "unknown CPU"
        cpuinfo = Path("/proc/cpuinfo")
        if cpuinfo.exists():
            for line in cpuinfo.read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        packages = {}
        for name in PACKAGES:
            try:
                packages[name] = version(name)
            except PackageNotFoundError:
                packages[name] = "not installed"
        return cls(os.cpu_count() or 0, cpu, platform.python_version(), packages,
                   os.getloadavg())

    def describe(self) -> str:
        versions = ", ".join(f"{k} {v}" for k, v in self.packages.items())
        return (f"machine: {self.cores} cores ({self.cpu}), shared by client and servers, "
                f"nothing pinned to a core; load average {self.load[0]:.2f} at start; "
                f"loopback only.\nPython {self.python}; {versions}")


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


class CpuShare:
    """How busy the machine was during a run, and how much of that was someone else."""

    def __init__(self, pids: list[int]) -> None:
        import psutil

        self._psutil = psutil
        self.pids = pids
        self._start = self._sample()

    def _ours(self) -> float:
        total = 0.0
        for pid in self.pids:
            try:
                proc = self._psutil.Process(pid)
                for p in [proc, *proc.children(recursive=True)]:
                    times = p.cpu_times()
                    total += times.user + times.system
            except self._psutil.Error:
                continue
        return total

    def _sample(self) -> tuple[float, int, int, float]:
        import time

        busy, total = _machine_jiffies()
        return time.monotonic(), busy, total, self._ours()

    def describe(self) -> str:
        t0, b0, n0, o0 = self._start
        t1, b1, n1, o1 = self._sample()
        cores = os.cpu_count() or 1
        machine = (b1 - b0) / max(1, n1 - n0) * cores
        ours = (o1 - o0) / max(1e-9, t1 - t0)
        others = max(0.0, machine - ours)
        return (f"CPU during the run: {machine:.2f} of {cores} cores busy on average, "
                f"{others:.2f} of them by other processes (this run's client and servers: "
                f"{ours:.2f}); load average now {os.getloadavg()[0]:.2f}"
                + ("  <- a busy machine: figures are noisier" if others > 0.3 else ""))
