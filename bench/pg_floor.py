"""What esctl's PostgreSQL table and append statement alone cost on W1 (issue 15's floor).

``bench/user_path.py`` compares esctl's whole path (``Aggregate.apply`` +
``Repository.save``) with a raw insert into a PLAIN table (the rowid table and
``UNIQUE (aggregate_id, version)``). This script asks how close any client code could
come, with the same raw psycopg loop as the baseline and no framework at all:

  plain            the baseline of user_path.py (anchor bench ``sys_raw_pg.py``): one
                   autocommit ``INSERT`` per event, four parameters
  esctl table      the same loop into the table esctl's ``setup`` creates: a plain
                   ``INSERT … VALUES`` with the event's uuid (UUIDv7, as esctl makes them) and
                   created_at; the table's guarantees are its unique uuid index and the
                   ``tx`` column and ``(tx, id)`` index of the no-skip stream order
  esctl statement  the same loop sending esctl's own one-event append (``LOCKED_ONE``):
                   the version guard, the append lock, ``RETURNING id``
  esctl known      the statement esctl sends at a version it saw as the aggregate's newest
                   (``KNOWN_ONE``, ``stores/postgres/known_heads.py``): the lock and
                   ``RETURNING id``, no version read (W1's saves after each aggregate's first)
  esctl            the user's path: ``item.happen(**body)`` + ``Repository.save(item)``

W1 only (one event per transaction, 1,000 aggregates round-robin, events built inside the
timed region); the server's own settings (``synchronous_commit`` on, as the anchor bench).
Kinds run in alternating order; each figure is printed with its ratio to ``plain`` in the
same repetition, and the summary is the median of the per-repetition ratios. A ratio for
"esctl statement" below issue 15's 0.85 means no client code that keeps esctl's
statement and table can reach it on that host.

    python bench/pg_floor.py [--reps 5] [--n 5000] [--dsn postgresql://…]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from user_path import DSN, INSERT_PG, PG_PLAIN_DDL, RAW_TYPE, Item, body

from esctl_lib import Repository, open_store
from esctl_lib.events import new_uuid, utc_now
from esctl_lib.stores.postgres.append import KNOWN_ONE, LOCKED_ONE

PLAIN_SCHEMA = "esctl_floor_plain"
ESCTL_SCHEMA = "esctl_floor"
AGGREGATES = 1_000
INSERT_TABLE = ("INSERT INTO events (uuid, aggregate_id, type, body, version, created_at) "
                "VALUES (%s, %s, %s, %s::json, %s, %s)")
KINDS = ("plain", "esctl table", "esctl statement", "esctl known", "esctl")
GOAL = 0.85


def fresh_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def raw_connection(dsn: str, schema: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    return conn


def measure(kind: str, dsn: str, n: int) -> float:
    """Events a second of one kind, on a new table."""
    if kind == "plain":
        fresh_schema(dsn, PLAIN_SCHEMA)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(PLAIN_SCHEMA)))
        conn = raw_connection(dsn, PLAIN_SCHEMA)
        conn.execute(PG_PLAIN_DDL)
        return _raw(conn, kind, n)
    fresh_schema(dsn, ESCTL_SCHEMA)
    store = open_store(dsn, schema=ESCTL_SCHEMA)
    try:
        store.setup()
        if kind == "esctl":
            return _user_path(store, n)
        conn = raw_connection(dsn, ESCTL_SCHEMA)
        return _raw(conn, kind, n, store.append_key)  # type: ignore[attr-defined]
    finally:
        store.close()


def _raw(conn: psycopg.Connection[Any], kind: str, n: int, lock: int = 0) -> float:
    cur = conn.cursor()
    versions = [0] * AGGREGATES
    if kind == "plain":
        ids: list[Any] = [uuid.uuid4() for _ in range(AGGREGATES)]

        def run() -> None:
            for i in range(n):
                k = i % AGGREGATES
                v = versions[k] + 1
                cur.execute(INSERT_PG, (ids[k], RAW_TYPE, Jsonb(body(i)), v))
                versions[k] = v
    else:
        ids = [str(uuid.uuid4()) for _ in range(AGGREGATES)]
        table, known = kind == "esctl table", kind == "esctl known"

        def run() -> None:
            for i in range(n):
                k = i % AGGREGATES
                v = versions[k]
                agg = ids[k]
                if table:
                    cur.execute(INSERT_TABLE, (new_uuid(), agg, "item_happened",
                                               json.dumps(body(i)), v + 1, utc_now()))
                elif known:
                    cur.execute(KNOWN_ONE, (lock, new_uuid(), agg, "item_happened",
                                            json.dumps(body(i)), v + 1, utc_now(),
                                            None, None, None)).fetchall()
                else:
                    cur.execute(LOCKED_ONE, (lock, new_uuid(), agg, "item_happened",
                                             json.dumps(body(i)), v + 1, utc_now(),
                                             None, None, None, agg, v)).fetchall()
                versions[k] = v + 1
    try:
        seconds = _timed(run)
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (n,)
    finally:
        conn.close()
    return n / seconds


def _user_path(store: Any, n: int) -> float:
    repo = Repository(store)
    items = [Item(uuid.uuid4()) for _ in range(AGGREGATES)]
    store.latest_position()  # the pool is open before the clock starts

    def run() -> None:
        for i in range(n):
            item = items[i % AGGREGATES]
            item.happen(**body(i))
            repo.save(item)

    seconds = _timed(run)
    assert store.count() == n
    return n / seconds


def _timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--n", type=int, default=5_000, help="W1 events per kind and rep")
    parser.add_argument("--dsn", default=DSN)
    args = parser.parse_args()
    ratios: dict[str, list[float]] = {}
    rates: dict[str, list[float]] = {}
    try:
        for rep in range(1, args.reps + 1):
            order = KINDS if rep % 2 else tuple(reversed(KINDS))
            got = {kind: measure(kind, args.dsn, args.n) for kind in order}
            line = []
            for kind in KINDS:
                rates.setdefault(kind, []).append(got[kind])
                ratio = got[kind] / got["plain"]
                ratios.setdefault(kind, []).append(ratio)
                line.append(f"{kind} {got[kind]:7,.0f} x{ratio:.2f}")
            print(f"[rep {rep}] W1  " + "  ".join(line), flush=True)
    finally:
        for schema in (PLAIN_SCHEMA, ESCTL_SCHEMA):
            fresh_schema(args.dsn, schema)
    print(f"\nmedians over {args.reps} repetitions (ev/s; ratio to plain, median of the "
          "per-repetition ratios), PostgreSQL, the server's synchronous_commit")
    print(f"{'kind':17}{'ev/s':>9}{'µs/save':>9}{'ratio':>8}   goal (issue 15, esctl)")
    for kind in KINDS:
        rate = statistics.median(rates[kind])
        ratio = statistics.median(ratios[kind])
        goal = f">= {GOAL}" if kind in ("esctl", "esctl statement", "esctl known") else ""
        print(f"{kind:17}{rate:9,.0f}{1e6 / rate:9.0f}{ratio:8.2f}   {goal}")
    print(f"load {os.getloadavg()[0]:.2f} at the end", file=sys.stderr)


if __name__ == "__main__":
    main()
