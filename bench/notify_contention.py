"""NOTIFY in the commit, and what it costs writers in several processes (PostgreSQL).

A transaction that issues NOTIFY holds PostgreSQL's notify lock from before its commit
record through the WAL flush, so notifying commits run one at a time on the whole server.
esctl notifies in an append's own statement only while the store is quiet
(``listen.CommitNotify``), else from its notifier thread. This measures, in one run and
alternating the variants:

- ``raw`` / ``raw+notify``: bare psycopg INSERTs into a plain table, without and with
  ``pg_notify`` in the same statement (the cost of the lock itself);
- ``esctl`` / ``esctl thread``: ``Repository.save`` with the default policy and with
  ``notify_in_commit=False`` (every notification from the notifier thread).

Each for 1, 4 and 8 writer processes, flat out and paced at 200 saves a second each. It
prints the total events a second and the save time (p50, p99) over all writers.

    python bench/notify_contention.py [--seconds 3] [--writers 1,4,8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from user_path import PG_PLAIN_DDL, Item, body, percentile

from esctl_lib import Repository, open_store

DSN = os.environ.get("ESCTL_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
RAW_INSERT = ("INSERT INTO events (aggregate_id, type, body, version) "
              "VALUES (%s, 'item_happened', %s, %s)")
RAW_NOTIFY = ("WITH ins AS (" + RAW_INSERT + " RETURNING id) "
              "SELECT pg_notify('bench_contention', '') FROM ins")
VARIANTS = ("raw", "raw+notify", "esctl", "esctl thread")


def _writer(variant: str, schema: str, rate: float | None, seconds: float, go: Any,
            out: Any) -> None:
    times: list[float] = []
    if variant.startswith("raw"):
        import psycopg
        from psycopg.types.json import Jsonb

        conn = psycopg.connect(DSN, autocommit=True, options=f"-c search_path={schema}")
        query = RAW_NOTIFY if variant == "raw+notify" else RAW_INSERT
        agg, version = uuid.uuid4(), 0

        def save(i: int) -> None:
            nonlocal version
            version += 1
            conn.execute(query, (agg, Jsonb(body(i)), version), prepare=True)
        close = conn.close
    else:
        store = open_store(DSN, schema=schema, notify_in_commit=variant == "esctl")
        repo = Repository(store)
        item = Item(uuid.uuid4())

        def save(i: int) -> None:
            item.happen(**body(i))
            repo.save(item)
        close = store.close
    save(0)  # connect before the clock starts
    go.wait()
    start = time.monotonic()
    end, i = start + seconds, 1
    while True:
        if rate is not None:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        began = time.monotonic()
        if began >= end:
            break
        save(i)
        times.append(time.monotonic() - began)
        i += 1
    close()
    out.put(times)


def measure(variant: str, schema: str, writers: int, rate: float | None,
            seconds: float) -> tuple[float, list[float]]:
    ctx = mp.get_context("spawn")
    go, out = ctx.Barrier(writers + 1), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(variant, schema, rate, seconds, go, out))
             for _ in range(writers)]
    for p in procs:
        p.start()
    go.wait()
    times = [t for _ in procs for t in out.get(timeout=120)]
    for p in procs:
        p.join(30)
    return len(times) / seconds, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--writers", default="1,4,8")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import psycopg

    tag = uuid.uuid4().hex[:6]
    raw_schema, esctl_schema = f"bench_nc_raw_{tag}", f"bench_nc_esctl_{tag}"
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{raw_schema}"')
        conn.execute(f'SET search_path TO "{raw_schema}"')
        conn.execute(PG_PLAIN_DDL.encode())
    setup = open_store(DSN, schema=esctl_schema)
    setup.setup()
    setup.close()
    try:
        print("writers  pace          variant        events/s   save p50   save p99")
        for writers in (int(w) for w in args.writers.split(",")):
            for rate in (None, 200.0):
                results: dict[str, list[tuple[float, list[float]]]] = {v: [] for v in VARIANTS}
                for r in range(args.rounds):  # alternate, the order reversed every round
                    for variant in (VARIANTS if r % 2 == 0 else VARIANTS[::-1]):
                        schema = raw_schema if variant.startswith("raw") else esctl_schema
                        results[variant].append(
                            measure(variant, schema, writers, rate, args.seconds))
                pace = "flat out" if rate is None else f"{rate:.0f}/s each"
                for variant in VARIANTS:
                    rates = [x[0] for x in results[variant]]
                    times = [t for x in results[variant] for t in x[1]]
                    print(f"{writers:7d}  {pace:12s}  {variant:12s}  {statistics.median(rates):9,.0f}"
                          f"  {percentile(times, 50) * 1000:6.2f} ms"
                          f"  {percentile(times, 99) * 1000:6.2f} ms", flush=True)
    finally:
        with psycopg.connect(DSN, autocommit=True) as conn:
            for schema in (raw_schema, esctl_schema):
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
