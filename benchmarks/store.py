"""The store at 100, 1,000 and 10,000 secrets: list, one write, a batch of 100, key rotation.

Every operation goes through the public services (``SecretsService`` and
``ConnectionsService`` over ``store.open_store``), as the REST API and the CLI call them, so
sealing, validation and the "in use" checks are in the figures. The store is filled between
sizes straight through store transactions (not timed). Prints each figure per size, how much
it grew from 100 to 10,000 secrets, and the targets of issue 12.

    python benchmarks/store.py [--quick] [--backend sqlite|postgresql|both] [--store-url URL]

By default both backends run, one after the other in the same run: a fresh SQLite file in a
temporary folder, then a private PostgreSQL cluster (started as the tests start theirs, from
Debian's ``postgresql``; stopped and removed at the end), with the PostgreSQL / SQLite ratio
of each figure at 10,000 secrets. A ``--store-url`` must name an empty store: the benchmark
fills it with up to 10,000 secrets and deletes everything it wrote at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _report import Machine, status_line  # noqa: E402

from jupyter_secrets import crypto  # noqa: E402
from jupyter_secrets.crypto import Keyring, Plaintext  # noqa: E402
from jupyter_secrets.egress.redaction import ValueIndex  # noqa: E402
from jupyter_secrets.keys import generate_key_text  # noqa: E402
from jupyter_secrets.services.connections import ConnectionsService  # noqa: E402
from jupyter_secrets.services.secrets import SecretsService  # noqa: E402
from jupyter_secrets.store import SecretRecord, Store, open_store  # noqa: E402
from jupyter_secrets.store.records import now_iso  # noqa: E402

SIZES = (100, 1_000, 10_000)
PREFIX = "BENCH_"
ACTOR = "bench"
CONNECTIONS = 5
FLAT = 2.0  # "flat": at most this much slower at 10,000 secrets than at 100


@dataclass
class Repeats:
    list: int = 9
    writes: int = 25
    batches: int = 5
    rotations: int = 3


QUICK = Repeats(list=5, writes=10, batches=3, rotations=1)


@dataclass
class Row:
    label: str
    unit: str
    target: float | None  # at 10,000 secrets
    flat: bool  # whether the issue asks it to stay flat
    by_size: dict[int, float] = field(default_factory=dict)


def value() -> str:
    return f"sk-bench-{secrets.token_hex(24)}"


def median_ms(fn: Callable[[], object], repeat: int, *, after: Callable[[], object] | None = None,
              ) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
        if after is not None:
            after()
    return statistics.median(samples)


def fill(store: Store, keyring: Keyring, start: int, stop: int) -> None:
    """Secrets ``start`` .. ``stop - 1``, written straight through one transaction (untimed)."""
    now = now_iso()
    with store.transaction() as tx:
        for i in range(start, stop):
            record = SecretRecord(
                id=uuid.uuid4().hex, name=f"{PREFIX}{i:06d}", kind="user", description="",
                owner=ACTOR, created_at=now, updated_at=now, updated_by=ACTOR, version=1,
                allowed_hosts=("api.example.com",), key_id="")
            tx.insert_secret(record, crypto.seal(keyring, record.identity, Plaintext(value())))


def measure_size(service: SecretsService, keys: list[str], n: int, r: Repeats,
                 rows: dict[str, Row]) -> None:
    counter = iter(range(10**9))

    def create() -> None:
        service.create(ACTOR, f"{PREFIX}W_{next(counter)}", value())

    def drop_written() -> None:
        service.batch(ACTOR, [{"key": rec.name, "value": None} for rec in service.list()
                              if rec.name.startswith(f"{PREFIX}W_")])

    # Warm-up (untimed): the first calls after a fill pay for caches and the WAL checkpoint.
    service.list()
    create()
    drop_written()
    rows["list"].by_size[n] = median_ms(service.list, r.list)
    rows["list_cold"].by_size[n] = median_ms(
        lambda: (service.forget_listing(), service.list()), r.list)
    rows["create"].by_size[n] = median_ms(create, r.writes)
    drop_written()
    rows["replace"].by_size[n] = median_ms(
        lambda: service.replace(ACTOR, f"{PREFIX}{secrets.randbelow(n):06d}", value()), r.writes)

    batch_names = [f"{PREFIX}B_{j:03d}" for j in range(100)]
    upserts, deletes = [], []
    for _ in range(r.batches):
        upserts.append(median_ms(
            lambda: service.batch(ACTOR, [{"key": k, "value": value()} for k in batch_names]), 1))
        deletes.append(median_ms(
            lambda: service.batch(ACTOR, [{"key": k, "value": None} for k in batch_names]), 1))
    rows["batch"].by_size[n] = statistics.median(upserts)
    rows["batch_delete"].by_size[n] = statistics.median(deletes)

    # Rotation: alternate which key is primary, so every run re-wraps all n secrets.
    per_secret = []
    for i in range(r.rotations):
        order = keys[::-1] if i % 2 == 0 else keys
        rotating = SecretsService(service.store, Keyring.from_text(",".join(order)))
        started = time.perf_counter()
        changed = rotating.rotate_master_key()
        elapsed = (time.perf_counter() - started) * 1000
        if changed < n:
            raise SystemExit(f"rotation re-wrapped {changed} of {n} secrets")
        per_secret.append(elapsed / changed)
    if r.rotations % 2:  # leave the original key primary for the next size
        SecretsService(service.store, Keyring.from_text(",".join(keys))).rotate_master_key()
    rows["rotation"].by_size[n] = statistics.median(per_secret)

    # Not the store: the value index's first full load (every stored value decrypted and
    # indexed), once per process; later changes are applied one secret at a time
    # (benchmarks/redaction.py measures those).
    # It reads through a service of its own: an index subscribes to its service's writes for
    # good, and one left on ``service`` would make every later size's writes update the
    # indexes of the sizes before (the writes here are the CLI's path, with no index; what a
    # write costs a server's index is redaction.py's first figure).
    def full_load() -> None:
        index = ValueIndex(SecretsService(service.store, service.keyring))
        index.scrub_text("load")
        index.wait_idle()

    rows["index"].by_size[n] = median_ms(full_load, 1)


def clean_up(store: Store) -> None:
    with store.transaction() as tx:
        for connection in tx.list_connections():
            if connection.name.startswith("bench-"):
                tx.delete_connection(connection.name)
        for record, _ in tx.sealed_rows():
            if record.name.startswith(PREFIX):
                tx.delete_secret(record.id)


def run(url: str, r: Repeats, *, temporary: bool) -> dict[str, Row]:
    store = open_store(url)
    if store.list_secrets(kind=None) or store.list_connections():
        raise SystemExit(f"{url} is not empty: point --store-url at an empty store.")
    keys = [generate_key_text(), generate_key_text()]
    keyring = Keyring.from_text(keys[0])
    service = SecretsService(store, keyring)
    rows = {
        "list": Row("list (all user secrets, with used_by)", "ms", 50, False),
        "list_cold": Row("list right after a change (cache emptied)", "ms", None, False),
        "create": Row("one write: create", "ms", 10, True),
        "replace": Row("one write: replace a value", "ms", 10, True),
        "batch": Row("batch of 100 (upsert, one transaction)", "ms", 100, True),
        "batch_delete": Row("batch of 100 deletes", "ms", 100, True),
        "rotation": Row("key rotation, per secret", "ms", 2, True),
        "index": Row("(server) value index rebuild after a change", "ms", None, False),
    }
    try:
        have = 0
        for n in SIZES:
            fill(store, keyring, have, n)
            have = n
            if n == SIZES[0]:
                connections = ConnectionsService(service)
                for i in range(CONNECTIONS):
                    connections.create(ACTOR, {"name": f"bench-{i}", "preset": "openai",
                                               "secret": f"{PREFIX}{i:06d}"})
            started = time.monotonic()
            measure_size(service, keys, n, r, rows)
            print(f"  {n:>6} secrets measured in {time.monotonic() - started:.1f} s",
                  file=sys.stderr)
    finally:
        if not temporary:
            clean_up(store)
        store.close()
    return rows


def report(rows: dict[str, Row], url: str) -> None:
    first, last = SIZES[0], SIZES[-1]
    head = "".join(f"{n:>11,}" for n in SIZES)
    print(f"\n{'operation (median)':<42}{head}{f'{last:,} / {first}':>14}{'target':>12}")
    for row in rows.values():
        cells = "".join(f"{row.by_size[n]:>9.2f}ms" for n in SIZES)
        ratio = row.by_size[last] / row.by_size[first]
        target = f"<= {row.target:g} ms" if row.target is not None else ""
        print(f"{row.label:<42}{cells}{ratio:>13.2f}x{target:>12}")
    print(f"\nTargets at {last:,} secrets ({url.split(':', 1)[0]}):")
    for row in rows.values():
        at = row.by_size[last]
        ratio = at / row.by_size[first]
        if row.target is not None:
            print(status_line(at <= row.target, f"{row.label} <= {row.target:g} ms",
                              f"{at:.2f} ms"))
        if row.flat:
            print(status_line(ratio <= FLAT, f"{row.label} flat from {first} to {last:,} "
                              f"(<= {FLAT:g}x)", f"{ratio:.2f}x"))
    print(status_line(None, "list grows with the rows it returns",
                      f"{rows['list'].by_size[last] / rows['list'].by_size[first]:.1f}x from "
                      f"{first} to {last:,}"))


@contextmanager
def private_postgres() -> Iterator[str]:
    """An empty database on a private PostgreSQL cluster (the tests' own), removed after."""
    from tests.postgres import INSTALL_HINT, PostgresCluster, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit(INSTALL_HINT)
    cluster = PostgresCluster(bindir)
    try:
        cluster.init()
        cluster.start()
        cluster.create_role()
        yield cluster.create_database("bench")
    finally:
        cluster.remove()


def compare(results: dict[str, dict[str, Row]]) -> None:
    sqlite, postgres, last = results["sqlite"], results["postgresql"], SIZES[-1]
    print(f"\n{'PostgreSQL against SQLite, same run':<42}{'sqlite':>11}{'postgresql':>13}"
          f"{'ratio':>9}")
    for key, row in sqlite.items():
        a, b = row.by_size[last], postgres[key].by_size[last]
        print(f"{row.label:<42}{a:>9.2f}ms{b:>11.2f}ms{b / a:>8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both",
                        help="temporary stores to measure (postgresql: a private cluster)")
    parser.add_argument("--store-url", help="an empty store to use instead of temporary ones")
    args = parser.parse_args()
    r = QUICK if args.quick else Repeats()
    print(Machine.here().describe())
    started = time.monotonic()
    results: dict[str, dict[str, Row]] = {}
    urls: dict[str, str] = {}
    if args.store_url:
        urls["given"] = args.store_url
        results["given"] = run(args.store_url, r, temporary=False)
    if not args.store_url and args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
            urls["sqlite"] = f"sqlite:///{Path(tmp) / 'secrets.db'}"
            print("sqlite:", file=sys.stderr)
            results["sqlite"] = run(urls["sqlite"], r, temporary=True)
    if not args.store_url and args.backend in ("postgresql", "both"):
        with private_postgres() as url:
            urls["postgresql"] = url
            print("postgresql:", file=sys.stderr)
            results["postgresql"] = run(url, r, temporary=True)
    for name, rows in results.items():
        print(f"\nstore: {urls[name].split(':', 1)[0]}; {CONNECTIONS} connections; each "
              "secret a 57-byte value with one allowed host")
        report(rows, urls[name])
    if len(results) == 2:
        compare(results)
    print(f"\n(run took {time.monotonic() - started:.0f} s; pid {os.getpid()})")


if __name__ == "__main__":
    main()
