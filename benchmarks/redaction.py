"""Value index and redaction costs at scale, each against a baseline measured in the same run.

Builds a real SQLite store with N secrets (real encryption) and measures:

1. one write at 100 vs N stored secrets (the index must stay flat);
2. a batch of 100 at N stored: the index's share of the write, against rebuilding the whole
   index (what every write cost before), plus the background compaction it triggers and the
   longest pause it causes other threads (an SSE stream's event loop);
3. saving a 10 MB notebook at N stored values, against serializing it (what the save does
   anyway), with no value in it (the usual case) and with a few;
4. the proxy's per-call work: values and scrubber from the index, against opening the values
   and building a scrubber per call;
5. with ``--libraries``: pyahocorasick against ahocorasick-rs on 100,000 patterns and 10 MB.

    python benchmarks/redaction.py [--secrets 10000] [--mib 10] [--libraries]
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jupyter_secrets import crypto  # noqa: E402
from jupyter_secrets.boundary.forms import forms  # noqa: E402
from jupyter_secrets.boundary.scrub import Scrubber  # noqa: E402
from jupyter_secrets.crypto import Keyring  # noqa: E402
from jupyter_secrets.egress.redaction import ValueIndex  # noqa: E402
from jupyter_secrets.keys import generate_key_text  # noqa: E402
from jupyter_secrets.services.secrets import SecretsService  # noqa: E402
from jupyter_secrets.store.sqlite import SQLiteStore  # noqa: E402


def ms(fn: Callable[[], Any], repeat: int = 5) -> float:
    """Median wall time of ``fn`` in milliseconds."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


class PauseMeter:
    """The longest gap a 1 ms ticker thread sees: how long others held the GIL."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    def __enter__(self) -> PauseMeter:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def token() -> str:
    """Shaped like real API keys: a fixed prefix, then random hex."""
    return f"sk-{secrets.token_hex(20)}"


def random_token() -> str:
    """No shared prefix at all: the automaton's worst case over base64-heavy text."""
    return secrets.token_urlsafe(32)


def seeded_service(folder: Path, count: int, key: str,
                   make: Callable[[], str] = token) -> SecretsService:
    folder.mkdir(parents=True, exist_ok=True)
    service = SecretsService(SQLiteStore(folder / "secrets.db"), Keyring.from_text(key))
    for start in range(0, count, 100):
        service.batch("bench", [{"key": f"K{i:05d}", "value": make()}
                                for i in range(start, min(start + 100, count))])
    return service


def notebook(mib: int, leaked: list[str]) -> dict[str, Any]:
    """Cells with sources, stream outputs and a base64 image every 20th cell."""
    image = base64.b64encode(secrets.token_bytes(75_000)).decode()
    cells = []
    size = 0
    index = 0
    while size < mib * 1024 * 1024:
        source = [f"x_{index}_{j} = compute({j}, 'label {j}')  # step {j}\n" for j in range(10)]
        outputs: list[dict[str, Any]] = [{"output_type": "stream", "name": "stdout",
                                          "text": [f"result {index} {j}\n" for j in range(20)]}]
        if index % 20 == 0:
            outputs.append({"output_type": "display_data", "metadata": {},
                            "data": {"image/png": image, "text/plain": ["<Figure>"]}})
            size += len(image)
        cells.append({"cell_type": "code", "execution_count": index, "id": f"c{index}",
                      "metadata": {}, "source": source, "outputs": outputs})
        size += 900
        index += 1
    for n, value in enumerate(leaked):
        cells[n * 7]["source"].append(f"key = '{value}'\n")
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def loaded_index(service: SecretsService) -> tuple[ValueIndex, float]:
    index = ValueIndex(service)
    started = time.perf_counter()
    index.scrub_text("load")
    index.wait_idle()
    return index, (time.perf_counter() - started) * 1000


def timed_listener(service: SecretsService, into: list[float]) -> None:
    """Time the value index's ``on_change`` (the index's share of every write) into ``into``."""
    listener = service._listeners[-1]

    def timed(result: Any) -> None:
        started = time.perf_counter()
        listener(result)
        into.append((time.perf_counter() - started) * 1000)

    service._listeners[-1] = timed


def bench_writes(small: SecretsService, big: SecretsService) -> None:
    sizes = {name: len(s.store.list_secrets()) for name, s in (("small", small), ("big", big))}
    print(f"\n## One write (replace a value) at {sizes['small']} vs {sizes['big']} stored")
    totals: dict[str, list[float]] = {"small": [], "big": []}
    shares: dict[str, list[float]] = {"small": [], "big": []}
    timed_listener(small, shares["small"])
    timed_listener(big, shares["big"])
    for i in range(60):  # interleaved, so load on the machine hits both alike
        for label, service in (("small", small), ("big", big)):
            started = time.perf_counter()
            service.replace("bench", f"K{i:05d}", token())
            totals[label].append((time.perf_counter() - started) * 1000)
    small_total, big_total = statistics.median(totals["small"]), statistics.median(totals["big"])
    small_index, big_index = statistics.median(shares["small"]), statistics.median(shares["big"])
    print(f"write, total        {small_total:7.2f} ms vs {big_total:7.2f} ms  "
          f"ratio {big_total / small_total:5.2f}x (flat is 1x)")
    print(f"  the index's share {small_index:7.2f} ms vs {big_index:7.2f} ms  "
          f"ratio {big_index / small_index:5.2f}x")


def bench_batch(service: SecretsService, index: ValueIndex, load_ms: float) -> None:
    count = len(service.store.list_secrets())
    print(f"\n## Batch of 100 at {count} stored")
    shares: list[float] = []
    timed_listener(service, shares)
    compactions: list[float] = []
    compact = index._compact

    def timed_compact() -> None:
        started = time.perf_counter()
        compact()
        compactions.append((time.perf_counter() - started) * 1000)

    index._compact = timed_compact  # type: ignore[method-assign]
    items = [{"key": f"NEW{i:03d}", "value": token()} for i in range(100)]
    started = time.perf_counter()
    service.batch("bench", items)
    total = (time.perf_counter() - started) * 1000
    with PauseMeter() as meter:
        index.wait_idle()
    index._compact = compact  # type: ignore[method-assign]
    print(f"batch write, total                    {total:8.1f} ms")
    print(f"  of which the index update (sync)    {shares[-1]:8.1f} ms")
    print(f"background compaction after it        {sum(compactions):8.1f} ms "
          f"(longest pause for other threads {meter.longest * 1000:.1f} ms)")
    print(f"baseline: rebuild the whole index     {load_ms:8.1f} ms (decrypt all + build)")
    print(f"ratio index update / full rebuild     {shares[-1] / load_ms:8.4f}x")


def bench_save(index: ValueIndex, mib: int, label: str = "API keys") -> None:
    count = len(index._entries)
    leaked = [crypto.reveal(e.value) for e in list(index._entries.values())[:: count // 5]][:5]
    clean = notebook(mib, [])
    dirty = notebook(mib, leaked)
    serialized = json.dumps(clean, indent=1, ensure_ascii=False, sort_keys=True)
    print(f"\n## Save a {len(serialized) / 2**20:.1f} MiB notebook at {count} stored values, "
          f"{label} ({index.layers.passes} automaton passes)")
    write = ms(lambda: json.dumps(clean, indent=1, ensure_ascii=False, sort_keys=True))
    nothing = ms(lambda: index.scrub_model({"type": "notebook", "content": clean}))

    def redact_dirty() -> None:
        model = {"type": "notebook", "content": json.loads(json.dumps(dirty))}
        found = index.scrub_model(model)
        assert sorted(found.found) and len(found.found) == len(leaked)

    copy = ms(lambda: json.loads(json.dumps(dirty)))
    some = ms(redact_dirty) - copy
    print(f"baseline: serialize it (nbformat does) {write:8.1f} ms")
    print(f"redaction, no value present            {nothing:8.1f} ms  "
          f"({nothing / write:.2f}x the serialization; target <= 200 ms)")
    print(f"redaction, {len(leaked)} values present          {some:8.1f} ms  "
          f"({some / write:.2f}x)")


def bench_proxy(service: SecretsService, index: ValueIndex) -> None:
    print("\n## The proxy's per-call work (one injected value)")
    names = {"K00001"}

    def old_way() -> None:
        opened = service.open(names)
        Scrubber({n: crypto.reveal(v) for n, (_, v) in opened.items()})

    def new_way() -> None:
        opened = index.lookup_cached(names) or index.lookup(names)
        index.scrubber(opened)

    old = ms(lambda: [old_way() for _ in range(200)]) / 200
    new = ms(lambda: [new_way() for _ in range(200)]) / 200
    print(f"baseline: open + build a scrubber      {old * 1000:8.1f} us")
    print(f"index lookup + cached scrubber         {new * 1000:8.1f} us")
    print(f"ratio                                  {new / old:8.3f}x")


def bench_libraries(mib: int) -> None:
    print(f"\n## Aho-Corasick libraries: 100,000 patterns, {mib} MiB of text")
    import ahocorasick_rs

    try:
        import ahocorasick
    except ImportError:
        print("pyahocorasick is not installed: pip install pyahocorasick to compare")
        return
    patterns: list[bytes] = []
    while len(patterns) < 100_000:
        patterns.extend(forms(token()))
    patterns = patterns[:100_000]
    text = (b"print('hello world') # ordinary notebook text 0123456789\n"
            * (mib * 1024 * 1024 // 57))

    def build_py() -> Any:
        automaton = ahocorasick.Automaton()
        for i, p in enumerate(patterns):
            automaton.add_word(p.decode("latin-1"), i)
        automaton.make_automaton()
        return automaton

    with PauseMeter() as rs_pause:
        started = time.perf_counter()
        rs = ahocorasick_rs.BytesAhoCorasick(
            patterns, implementation=ahocorasick_rs.Implementation.ContiguousNFA)
        rs_build = (time.perf_counter() - started) * 1000
    with PauseMeter() as py_pause:
        started = time.perf_counter()
        py = build_py()
        py_build = (time.perf_counter() - started) * 1000
    rs_search = ms(lambda: rs.find_matches_as_indexes(text, overlapping=True), repeat=3)
    decoded = text.decode("latin-1")
    py_search = ms(lambda: list(py.iter(decoded)), repeat=3)
    print(f"ahocorasick-rs  build {rs_build:8.1f} ms (GIL held {rs_pause.longest * 1000:.0f} ms)"
          f"  search {rs_search:7.1f} ms (GIL released)")
    print(f"pyahocorasick   build {py_build:8.1f} ms (GIL held {py_pause.longest * 1000:.0f} ms)"
          f"  search {py_search:7.1f} ms (GIL held; str only)")
    print(f"ratio rs / py search {rs_search / py_search:.2f}x, build {rs_build / py_build:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=10_000)
    parser.add_argument("--mib", type=int, default=10)
    parser.add_argument("--libraries", action="store_true")
    args = parser.parse_args()
    key = generate_key_text()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        service = seeded_service(folder / "main", args.secrets, key)
        print(f"seeded {args.secrets} secrets in {time.perf_counter() - started:.1f} s")
        index, load_ms = loaded_index(service)
        print(f"first full load of the index: {load_ms:.0f} ms ({index.layers!r})")
        bench_batch(service, index, load_ms)
        bench_save(index, args.mib)
        bench_proxy(service, index)
        small = seeded_service(folder / "small", 100, key)
        loaded_index(small)
        bench_writes(small, service)
        small.store.close()
        service.store.close()
        other = seeded_service(folder / "random", args.secrets, key, random_token)
        bench_save(loaded_index(other)[0], args.mib, "random tokens, no shared prefix")
        other.store.close()
    if args.libraries:
        bench_libraries(args.mib)


if __name__ == "__main__":
    main()
