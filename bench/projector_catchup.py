"""W3b: a projector catching up over 200,000 events, against a raw driver loop, same run.

One counter upsert per event, the tracker saved in the same transaction per page of 1,000.
The esctl side goes through the public API (a ``Projector`` run by ``process_available``);
the raw side does by hand what a careful programmer would: per page SELECT, executemany
UPSERT, UPDATE tracker, COMMIT (sqlite3 with the store's pragmas; psycopg on one
connection). Ratio = raw time / esctl time (above 1: esctl is faster).
Targets: >= 1.2 on PostgreSQL, >= 0.7 on SQLite.

    python bench/projector_catchup.py [--backend sqlite|postgres|both] [--events 200000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from esctl_lib import Event, EventStore, handles, open_store
from esctl_lib.processing import BatchTransaction, Projector, process_available

TARGETS = {"sqlite": 0.7, "postgres": 1.2}
PAGE = 1000
KEYS = 1000
DSN = os.environ.get("ESCTL_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
COLUMNS = ("id, uuid, aggregate_id, type, body, version, created_at, correlation_id, "
           "causation_id, metadata")
UPSERT = ("INSERT INTO bench_counts (k, n) VALUES ({p}, 1) "
          "ON CONFLICT (k) DO UPDATE SET n = bench_counts.n + 1")


class BenchCounted(Event, type_name="bench_counted"):
    pass


class Counter(Projector):
    """One counter upsert per event, keyed by aggregate."""

    name = "bench_counter"
    batch_size = PAGE
    tables = {"bench_counts": "CREATE TABLE IF NOT EXISTS bench_counts "
                              "(k TEXT PRIMARY KEY, n BIGINT NOT NULL)"}

    sql = {"?": UPSERT.format(p="?"), "%s": UPSERT.format(p="%s")}

    @handles(BenchCounted)
    def _counted(self, event: Event, tx: BatchTransaction) -> None:
        tx.defer(self.sql[tx.placeholder], (event.aggregate_id,))


def fill(store: EventStore, events: int) -> None:
    aggregates = [str(uuid.uuid4()) for _ in range(KEYS)]
    per = events // KEYS
    for agg in aggregates:
        store.append([BenchCounted(aggregate_id=agg, body={"amount": i}) for i in range(per)])


def reset(store: EventStore) -> None:
    with store.transaction() as tx:
        tx.execute("DROP TABLE IF EXISTS bench_counts")
        tx.execute(Counter.tables["bench_counts"])  # type: ignore[arg-type]
        tx.reset_tracker(Counter.name, 0)


def check(store: EventStore, events: int) -> None:
    with store.transaction() as tx:
        row = tx.fetchone("SELECT count(*), sum(n) FROM bench_counts")
    assert row is not None and int(row[0]) == KEYS and int(row[1]) == events, row


def run_esctl(store: EventStore, events: int) -> float:
    reset(store)
    start = time.perf_counter()
    handled = process_available(Counter(), store)
    elapsed = time.perf_counter() - start
    assert handled == events, handled
    check(store, events)
    return elapsed


def raw_sqlite(path: Path) -> Callable[[], int]:
    def loop() -> int:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        upsert = UPSERT.format(p="?")
        position = done = 0
        while True:
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM events WHERE id > ? ORDER BY id LIMIT ?",
                (position, PAGE),
            ).fetchall()
            if not rows:
                conn.execute("COMMIT")
                break
            conn.executemany(upsert, [(r[2],) for r in rows])
            position = rows[-1][0]
            conn.execute("UPDATE trackers SET position = ? WHERE name = ?",
                         (position, Counter.name))
            conn.execute("COMMIT")
            done += len(rows)
        conn.close()
        return done

    return loop


def raw_postgres(schema: str) -> Callable[[], int]:
    import psycopg

    def loop() -> int:
        with psycopg.connect(DSN) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            conn.commit()
            upsert = UPSERT.format(p="%s")
            position = done = 0
            while True:
                with conn.transaction():
                    rows = conn.execute(
                        f"SELECT {COLUMNS} FROM events WHERE id > %s ORDER BY id LIMIT %s",
                        (position, PAGE),
                    ).fetchall()
                    if not rows:
                        break
                    conn.cursor().executemany(upsert, [(str(r[2]),) for r in rows])
                    position = rows[-1][0]
                    conn.execute("UPDATE trackers SET position = %s WHERE name = %s",
                                 (position, Counter.name))
                done += len(rows)
        return done

    return loop


def run_raw(store: EventStore, loop: Callable[[], int], events: int) -> float:
    reset(store)
    start = time.perf_counter()
    done = loop()
    elapsed = time.perf_counter() - start
    assert done == events, done
    check(store, events)
    return elapsed


def measure(name: str, store: EventStore, loop: Callable[[], int], events: int,
            rounds: int) -> None:
    raw: list[float] = []
    ours: list[float] = []
    for _ in range(rounds):
        raw.append(run_raw(store, loop, events))
        ours.append(run_esctl(store, events))
    r, o = statistics.median(raw), statistics.median(ours)
    ratio = r / o
    verdict = "ok" if ratio >= TARGETS[name] else "BELOW TARGET"
    print(f"{name:8} raw loop {r:6.2f} s ({events / r:8.0f} ev/s)   "
          f"esctl Projector {o:6.2f} s ({events / o:8.0f} ev/s)   "
          f"ratio {ratio:4.2f} (target >= {TARGETS[name]}) {verdict}")


def bench_sqlite(events: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        store = open_store(f"sqlite:///{path}")
        store.setup()
        fill(store, events)
        measure("sqlite", store, raw_sqlite(path), events, rounds)
        store.close()


def bench_postgres(events: int, rounds: int) -> None:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    store = open_store(DSN, schema=schema)
    try:
        store.setup()
        fill(store, events)
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f'VACUUM ANALYZE "{schema}".events')
        measure("postgres", store, raw_postgres(schema), events, rounds)
    finally:
        store.close()
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.backend in ("sqlite", "both"):
        bench_sqlite(args.events, args.rounds)
    if args.backend in ("postgres", "both"):
        bench_postgres(args.events, args.rounds)


if __name__ == "__main__":
    main()
