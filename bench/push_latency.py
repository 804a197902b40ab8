"""W4: push latency, from an append's commit to the handler in another process.

The parent appends 200 events a second for 10 s; a child process runs a processor through
the public API (``run_processor``), whose handler notes when each event arrives. Latency =
arrival - the moment ``append`` returned (the commit), on the machine's monotonic clock.
The raw baseline, measured in the same run, is a child polling ``max(id)`` every 1 ms
with the bare driver; on PostgreSQL also the anchor bench's raw LISTEN (a writer whose
``INSERT`` and ``pg_notify`` are one autocommit statement, into a plain table; a child
that ``LISTEN``s and reads ``id > last`` on each notification). Ratio = raw p99 / esctl
p99 (above 1: esctl is faster). Targets (issue 15): p99 <= 1.5 ms on PostgreSQL, <= 15 ms
on SQLite.

    python bench/push_latency.py [--backend sqlite|postgres|both] [--rate 200] [--seconds 10]
                                 [--processor-synchronous FULL|NORMAL]

With ``--processor-synchronous NORMAL`` the processor's SQLite store commits without an
fsync (the appender keeps FULL): safe for processors, which lose at most their newest
batches whole on a power cut and process them again.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from esctl_lib import Event, EventStore, Transaction, open_store
from esctl_lib.processing import Processor, handles_all, wait_for

TARGETS_MS = {"sqlite": 15.0, "postgres": 1.5}
#: The processor child's CPU time per event in the last probe phase (ms; all its threads,
#: setup included): steadier than wall-clock latency on a busy machine.
CPU_MS = [0.0]
DSN = os.environ.get("ESCTL_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


class BenchPing(Event, type_name="bench_ping"):
    pass


class Probe(Processor):
    """Notes the monotonic time each event reaches its handler."""

    name = "bench_probe"

    def __init__(self) -> None:
        self.arrivals: dict[int, int] = {}

    @handles_all
    def _arrived(self, event: Event, tx: Transaction) -> None:
        self.arrivals[event.id or 0] = time.monotonic_ns()


def probe_child(url: str, schema: str | None, synchronous: str, ready: Any, stop: Any,
                out: Any) -> None:
    store = open_store(url, schema=schema, synchronous=synchronous)
    probe = Probe()
    local_stop = threading.Event()
    threading.Thread(target=lambda: (stop.wait(), local_stop.set()), daemon=True).start()
    ready.set()
    from esctl_lib.processing import run_processor

    cpu = time.process_time()
    run_processor(probe, store, stop=local_stop, idle_timeout=0.5)
    probe.arrivals[0] = int((time.process_time() - cpu) * 1e9)  # the child's CPU time
    out.put(probe.arrivals)
    store.close()


def raw_child(backend: str, target: str, schema: str | None, ready: Any, stop: Any,
              out: Any) -> None:
    """Poll max(id) every millisecond with the bare driver."""
    if backend == "sqlite":
        import sqlite3

        conn: Any = sqlite3.connect(target, isolation_level=None)
        query = "SELECT coalesce(max(id), 0) FROM events"
    else:
        import psycopg

        conn = psycopg.connect(target, autocommit=True)
        conn.execute(f'SET search_path TO "{schema}"')
        query = "SELECT coalesce(max(id), 0) FROM events"
    seen: dict[int, int] = {}
    last = conn.execute(query).fetchone()[0]
    ready.set()
    while not stop.is_set():
        head = conn.execute(query).fetchone()[0]
        if head > last:
            now = time.monotonic_ns()
            for event_id in range(last + 1, head + 1):
                seen[event_id] = now
            last = head
        time.sleep(0.001)
    out.put(seen)
    conn.close()


_RAW_TABLE = "raw_listen_events"
_RAW_APPEND = (f"WITH ins AS (INSERT INTO {_RAW_TABLE} (body) VALUES (%s) RETURNING id) "
               "SELECT id, pg_notify('raw_listen', id::text) FROM ins")


def raw_listen_child(dsn: str, schema: str, ready: Any, stop: Any, out: Any) -> None:
    """The anchor bench's raw W4 subscriber: LISTEN, on each notification read id > last."""
    import psycopg

    seen: dict[int, int] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute("LISTEN raw_listen")
        last = conn.execute(f"SELECT coalesce(max(id), 0) FROM {_RAW_TABLE}").fetchone()[0]
        cur = conn.cursor()
        ready.set()
        while not stop.is_set():
            if not any(True for _ in conn.notifies(timeout=0.1, stop_after=1)):
                continue
            rows = cur.execute(f"SELECT id FROM {_RAW_TABLE} WHERE id > %s ORDER BY id",
                               (last,), prepare=True).fetchall()
            now = time.monotonic_ns()
            for (event_id,) in rows:
                seen[event_id] = now
            if rows:
                last = rows[-1][0]
    out.put(seen)


def append_paced(store: EventStore, rate: int, seconds: float) -> dict[int, int]:
    """Append ``rate`` events a second; returns event id -> commit time (ns)."""
    def one(i: int) -> int:
        stored = store.append([BenchPing(aggregate_id=str(uuid.uuid4()), body={"seq": i})])
        return stored[0].id or 0

    return paced(one, rate, seconds)


def paced(append: Any, rate: int, seconds: float) -> dict[int, int]:
    """Call ``append(i)`` ``rate`` times a second; returns its id -> when it returned (ns)."""
    commits: dict[int, int] = {}
    count = int(rate * seconds)
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        event_id = append(i)
        commits[event_id] = time.monotonic_ns()
    return commits


def raw_listen_phase(dsn: str, schema: str, rate: int, seconds: float) -> list[float]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(f"CREATE TABLE IF NOT EXISTS {_RAW_TABLE} "
                     "(id bigserial PRIMARY KEY, body jsonb NOT NULL)")
        ctx = mp.get_context("spawn")
        ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
        child = ctx.Process(target=raw_listen_child, args=(dsn, schema, ready, stop, out))
        child.start()
        ready.wait(30)
        cur = conn.cursor()

        def one(i: int) -> int:
            row = cur.execute(_RAW_APPEND, (f'{{"seq": {i}}}',), prepare=True).fetchone()
            assert row is not None
            return int(row[0])

        commits = paced(one, rate, seconds)
        time.sleep(0.2)
        stop.set()
        arrivals: dict[int, int] = out.get(timeout=60)
        child.join(30)
    return [(arrivals[i] - t) / 1e6 for i, t in commits.items() if i in arrivals]


def run_phase(store: EventStore, target: Any, args: tuple[Any, ...], rate: int,
              seconds: float, *, is_probe: bool) -> list[float]:
    ctx = mp.get_context("spawn")
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    child = ctx.Process(target=target, args=(*args, ready, stop, out))
    child.start()
    ready.wait(30)
    if is_probe:  # warm up: the child has set up and is idle
        warm = store.append([BenchPing(aggregate_id=str(uuid.uuid4()))])[0].id or 0
        wait_for(store, Probe.name, warm, timeout=30)
    commits = append_paced(store, rate, seconds)
    if is_probe:
        wait_for(store, Probe.name, max(commits), timeout=30)
    else:
        time.sleep(0.1)
    stop.set()
    arrivals: dict[int, int] = out.get(timeout=60)
    child.join(30)
    if is_probe:
        CPU_MS[0] = arrivals.pop(0, 0) / 1e6 / max(1, len(commits) + 1)
    return [(arrivals[i] - t) / 1e6 for i, t in commits.items() if i in arrivals]


def report(name: str, ours: list[float], raw: list[float], expected: int,
           listen: list[float] | None = None) -> None:
    def pct(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=1000)[int(q * 10) - 1]

    p50, p99 = pct(ours, 50), pct(ours, 99)
    r50, r99 = pct(raw, 50), pct(raw, 99)
    verdict = "ok" if p99 <= TARGETS_MS[name] else "ABOVE TARGET"
    line = (f"{name:8} esctl p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  max {max(ours):6.2f} ms "
            f"({len(ours)}/{expected} events)   raw 1 ms poll p50 {r50:5.2f} ms  "
            f"p99 {r99:5.2f} ms   ratio {r99 / p99:4.2f}")
    if listen:
        l50, l99 = pct(listen, 50), pct(listen, 99)
        line += (f"   raw LISTEN p50 {l50:5.2f} ms  p99 {l99:5.2f} ms  "
                 f"ratio {l99 / p99:4.2f}")
    print(f"{line}   processor CPU {CPU_MS[0] * 1000:4.0f} us/event"
          f"   target p99 <= {TARGETS_MS[name]} ms {verdict}")


def bench(name: str, url: str, raw_target: str, schema: str | None, rate: int,
          seconds: float, synchronous: str = "FULL") -> None:
    store = open_store(url, schema=schema)
    store.setup()
    try:
        ours = run_phase(store, probe_child, (url, schema, synchronous), rate, seconds,
                         is_probe=True)
        raw = run_phase(store, raw_child, (name, raw_target, schema), rate, seconds,
                        is_probe=False)
        listen = (raw_listen_phase(raw_target, schema, rate, seconds)
                  if name == "postgres" and schema is not None else None)
        report(name, ours, raw, int(rate * seconds), listen)
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--processor-synchronous", default="FULL",
                        help="SQLite synchronous mode of the processor's store (FULL, NORMAL)")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "latency.db"
            bench("sqlite", f"sqlite:///{path}", str(path), None, args.rate, args.seconds,
                  args.processor_synchronous)
    if args.backend in ("postgres", "both"):
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        try:
            bench("postgres", DSN, DSN, schema, args.rate, args.seconds)
        finally:
            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
