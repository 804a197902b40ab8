"""The async PostgreSQL store against the sync one: W1 with 16 writers, in one run.

W1 is the anchor's single-event append with the expected version (~100-byte body, events
built inside the timed region, each writer tracking its aggregates' versions). Here 16
writers share one store:

  sync   16 threads on one ``PostgresStore`` (its pool sized 16);
  async  16 coroutines on one event loop and one ``open_async_store`` (its
         ``AsyncConnectionPool`` sized 16).

The raw baseline is the same pair without esctl: 16 threads on a
``psycopg_pool.ConnectionPool`` against 16 coroutines on an ``AsyncConnectionPool``, each
append one autocommit ``INSERT`` (id, aggregate, version, jsonb body; unique on aggregate
and version) into a plain table. It shows what the driver and the event loop cost by
themselves: esctl's async/sync ratio is read against raw async/sync.

Each repetition makes a fresh schema per side and runs all four sides, alternating the
order; the best of the repetitions is printed for each side (the machine may be shared),
with the ratios.

    python bench/async_store.py [--events 8000] [--aggregates 800] [--writers 16] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import Callable

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from esctl_lib import Event, EventRegistry, open_async_store, open_store

DSN = os.environ.get("ESCTL_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
BODY = {"name": "widget", "sku": "W-000123", "qty": 3, "price": "10.50", "note": "x" * 24}
TYPE = "item_added"


def plan(events: int, aggregates: int, writers: int) -> list[list[str]]:
    """Each writer's appends, as the aggregate id of each in order (round robin over its
    own aggregates, so no two writers race on one aggregate)."""
    ids = [str(uuid.uuid4()) for _ in range(aggregates)]
    per_writer = events // writers
    out = []
    for w in range(writers):
        own = ids[w::writers]
        out.append([own[i % len(own)] for i in range(per_writer)])
    return out


def fresh_schema() -> str:
    return f"bench_aio_{uuid.uuid4().hex[:10]}"


def drop(schema: str) -> None:
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def stored_count(schema: str) -> int:
    """Events stored (committed), whatever other transactions hold readers back."""
    with psycopg.connect(DSN, autocommit=True) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}.events").format(
            sql.Identifier(schema))).fetchone()
    return int(row[0]) if row else 0


def run_sync(work: list[list[str]]) -> float:
    schema = fresh_schema()
    store = open_store(DSN, schema=schema, registry=EventRegistry(), pool_size=len(work))
    try:
        store.setup()
        start = threading.Barrier(len(work) + 1)

        def writer(aggs: list[str]) -> None:
            versions: dict[str, int] = {}
            start.wait()
            for agg in aggs:
                version = versions.get(agg, 0)
                store.append([Event(aggregate_id=agg, type=TYPE, body=BODY)],
                             expected_version=version)
                versions[agg] = version + 1

        threads = [threading.Thread(target=writer, args=(aggs,)) for aggs in work]
        for t in threads:
            t.start()
        start.wait()
        began = time.perf_counter()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
        assert stored_count(schema) == sum(len(a) for a in work)
        return sum(len(a) for a in work) / elapsed
    finally:
        store.close()
        drop(schema)


def run_async(work: list[list[str]]) -> float:
    async def main() -> float:
        schema = fresh_schema()
        store = open_async_store(DSN, schema=schema, registry=EventRegistry(),
                                 pool_size=len(work))
        try:
            await store.setup()
            await store.latest_position()  # open the pool before the clock starts

            async def writer(aggs: list[str]) -> None:
                versions: dict[str, int] = {}
                for agg in aggs:
                    version = versions.get(agg, 0)
                    await store.append([Event(aggregate_id=agg, type=TYPE, body=BODY)],
                                       expected_version=version)
                    versions[agg] = version + 1

            began = time.perf_counter()
            await asyncio.gather(*(writer(aggs) for aggs in work))
            elapsed = time.perf_counter() - began
            assert stored_count(schema) == sum(len(a) for a in work)
            return sum(len(a) for a in work) / elapsed
        finally:
            await store.close()
            drop(schema)

    return asyncio.run(main())


RAW_TABLE = """
CREATE TABLE {}.raw_events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    aggregate_id uuid NOT NULL, type text NOT NULL, body jsonb NOT NULL, version integer NOT NULL,
    UNIQUE (aggregate_id, version))
"""
RAW_INSERT = "INSERT INTO raw_events (aggregate_id, type, body, version) VALUES (%s, %s, %s, %s)"


def raw_schema() -> str:
    schema = fresh_schema()
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL(RAW_TABLE).format(sql.Identifier(schema)))
    return schema


def raw_kwargs(schema: str) -> dict[str, object]:
    return {"autocommit": True, "options": f"-c search_path={schema}"}


def run_raw_sync(work: list[list[str]]) -> float:
    schema = raw_schema()
    pool = ConnectionPool(DSN, kwargs=raw_kwargs(schema), min_size=len(work),
                          max_size=len(work), open=True)
    try:
        pool.wait()
        start = threading.Barrier(len(work) + 1)

        def writer(aggs: list[str]) -> None:
            versions: dict[str, int] = {}
            start.wait()
            for agg in aggs:
                version = versions.get(agg, 0) + 1
                with pool.connection() as conn:
                    conn.execute(RAW_INSERT, (agg, TYPE, json.dumps(BODY), version))
                versions[agg] = version

        threads = [threading.Thread(target=writer, args=(aggs,)) for aggs in work]
        for t in threads:
            t.start()
        start.wait()
        began = time.perf_counter()
        for t in threads:
            t.join()
        return sum(len(a) for a in work) / (time.perf_counter() - began)
    finally:
        pool.close()
        drop(schema)


def run_raw_async(work: list[list[str]]) -> float:
    async def main() -> float:
        schema = raw_schema()
        pool = AsyncConnectionPool(DSN, kwargs=raw_kwargs(schema), min_size=len(work),
                                   max_size=len(work), open=False)
        await pool.open(wait=True)
        try:
            async def writer(aggs: list[str]) -> None:
                versions: dict[str, int] = {}
                for agg in aggs:
                    version = versions.get(agg, 0) + 1
                    async with pool.connection() as conn:
                        await conn.execute(RAW_INSERT, (agg, TYPE, json.dumps(BODY), version))
                    versions[agg] = version

            began = time.perf_counter()
            await asyncio.gather(*(writer(aggs) for aggs in work))
            return sum(len(a) for a in work) / (time.perf_counter() - began)
        finally:
            await pool.close()
            drop(schema)

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=8000)
    parser.add_argument("--aggregates", type=int, default=800)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    sides: dict[str, Callable[[list[list[str]]], float]] = {
        "raw sync": run_raw_sync, "raw async": run_raw_async,
        "sync": run_sync, "async": run_async,
    }
    best = {name: 0.0 for name in sides}
    for rep in range(args.reps):
        order = list(sides) if rep % 2 == 0 else list(reversed(sides))
        line = []
        for name in order:
            rate = sides[name](plan(args.events, args.aggregates, args.writers))
            best[name] = max(best[name], rate)
            line.append(f"{name} {rate:,.0f}/s")
        print(f"rep {rep + 1}: " + ", ".join(line), flush=True)
    w = args.writers
    print(f"W1, {w} writers, {args.events:,} events over {args.aggregates:,} aggregates, "
          f"best of {args.reps} (shared machine: compare ratios, not rates):")
    rows = [
        ("raw sync", f"{w} threads, psycopg ConnectionPool"),
        ("raw async", f"{w} coroutines, psycopg AsyncConnectionPool"),
        ("sync", f"{w} threads, one PostgresStore"),
        ("async", f"{w} coroutines, one open_async_store"),
    ]
    for name, what in rows:
        print(f"  {name:<9} ({what}): {best[name]:>9,.0f} events/s")
    print(f"  ratio async / sync, esctl: {best['async'] / best['sync']:.2f}; "
          f"raw: {best['raw async'] / best['raw sync']:.2f}")
    print(f"  esctl vs raw: sync {best['sync'] / best['raw sync']:.2f}, "
          f"async {best['async'] / best['raw async']:.2f}")


if __name__ == "__main__":
    main()
