"""What esctl's SQLite schema alone costs on the user path's workloads (issue 15's floor).

``bench/user_path.py`` compares esctl's whole path (``Aggregate.apply`` +
``Repository.save``) with a raw insert into a PLAIN table (two b-trees: the rowid table
and ``UNIQUE (aggregate_id, version)``). This script asks how close any code could come:
the same raw sqlite3 loop as the baseline, with no framework at all, inserting into the
table esctl's ``setup`` creates (its columns, a 16-byte uuid per event and the uuid's
UNIQUE index the guarantee "unique uuids" needs, the two partial indexes; since schema 4
no type index). Measured in one run, in alternating order, SQLite WAL with
``synchronous=FULL`` throughout, events built inside the timed region:

  plain            the baseline of user_path.py (anchor bench ``sys_raw_sqlite.py``)
  esctl schema     the same loop into esctl's table: one autocommit INSERT per event (W1),
                   BEGIN IMMEDIATE + executemany of 100 + COMMIT (W2); the uuid (UUIDv7,
                   as esctl makes them) and created_at built per event as esctl does
  type index       esctl's table with schema 3's ``events_type_id`` on ``(type, id)``
  esctl            the user's path: ``item.happen(**body)`` + ``Repository.save(item)``

Each figure is printed with its ratio to ``plain`` in the same repetition; the summary
is the median of the per-repetition ratios. A ratio for "esctl schema" below a target of
issue 15 means no implementation keeping that schema (and its guarantees) can reach it.

    python bench/sqlite_floor.py [--reps 5] [--n1 5000] [--n2 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from user_path import (
    INSERT_SQLITE,
    RAW_TYPE,
    SQLITE_PLAIN_DDL,
    Item,
    body,
    raw_sqlite_connect,
)

from esctl_lib import Repository, open_store
from esctl_lib.events import new_uuid, utc_now

INSERT_ESCTL = (
    "INSERT INTO events (uuid, aggregate_id, type, body, version, created_at, "
    "correlation_id, causation_id, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
AGGREGATES = 1_000
BATCH = 100


def esctl_table(path: str, *, type_index: bool = False) -> sqlite3.Connection:
    """A raw connection to a new store made by esctl's own ``setup``."""
    store = open_store(f"sqlite:///{path}")
    store.setup()
    store.close()
    conn = raw_sqlite_connect(path)
    if type_index:
        conn.execute("CREATE INDEX events_type_id ON events (type, id)")
    return conn


def uuid_bytes() -> bytes:
    return bytes.fromhex(new_uuid().replace("-", ""))


def raw_loop(conn: sqlite3.Connection, plain: bool, workload: str, n: int
             ) -> Callable[[], None]:
    if plain:
        ids: list[Any] = [str(uuid.uuid4()) for _ in range(AGGREGATES)]
    else:
        ids = [uuid.uuid4().bytes for _ in range(AGGREGATES)]
    versions = [0] * AGGREGATES

    def row(k: int, i: int, version: int, stamp: str) -> tuple[Any, ...]:
        if plain:
            return (ids[k], RAW_TYPE, json.dumps(body(i)), version)
        return (uuid_bytes(), ids[k], RAW_TYPE, json.dumps(body(i)), version, stamp,
                None, None, None)

    def now() -> str:  # esctl stamps an append's events with one time
        return "" if plain else utc_now().isoformat(timespec="microseconds")

    sql = INSERT_SQLITE if plain else INSERT_ESCTL

    def w1() -> None:
        for i in range(n):
            k = i % AGGREGATES
            versions[k] += 1
            conn.execute(sql, row(k, i, versions[k], now()))

    def w2() -> None:
        for b in range(n // BATCH):
            k = b % AGGREGATES
            v0 = versions[k]
            conn.execute("BEGIN IMMEDIATE")
            stamp = now()
            conn.executemany(sql, [row(k, b * BATCH + j, v0 + 1 + j, stamp)
                                   for j in range(BATCH)])
            conn.execute("COMMIT")
            versions[k] = v0 + BATCH

    return w1 if workload == "W1" else w2


def measure(kind: str, workload: str, n: int, folder: str) -> float:
    path = os.path.join(folder, f"{kind.replace(' ', '_')}.sqlite")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    if kind == "esctl":
        store = open_store(f"sqlite:///{path}")
        store.setup()
        repo = Repository(store)
        items = [Item(uuid.uuid4()) for _ in range(AGGREGATES)]
        store.latest_position()

        def run() -> None:
            if workload == "W1":
                for i in range(n):
                    item = items[i % AGGREGATES]
                    item.happen(**body(i))
                    repo.save(item)
            else:
                for b in range(n // BATCH):
                    item = items[b % AGGREGATES]
                    for j in range(BATCH):
                        item.happen(**body(b * BATCH + j))
                    repo.save(item)

        try:
            return n / _timed(run)
        finally:
            store.close()
    if kind == "plain":
        conn = raw_sqlite_connect(path)
        conn.execute(SQLITE_PLAIN_DDL)
    else:
        conn = esctl_table(path, type_index=kind == "type index")
    try:
        return n / _timed(raw_loop(conn, kind == "plain", workload, n))
    finally:
        conn.close()


def _timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


KINDS = ("plain", "esctl schema", "type index", "esctl")
GOALS = {"W1": 0.8, "W2": 0.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--n1", type=int, default=5_000, help="W1 events")
    parser.add_argument("--n2", type=int, default=100_000, help="W2 events")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="esctl-floor-")
    ratios: dict[tuple[str, str], list[float]] = {}
    rates: dict[tuple[str, str], list[float]] = {}
    try:
        for rep in range(1, args.reps + 1):
            for workload, n in (("W1", args.n1), ("W2", args.n2)):
                order = KINDS if rep % 2 else tuple(reversed(KINDS))
                got = {kind: measure(kind, workload, n, folder) for kind in order}
                line = []
                for kind in KINDS:
                    rates.setdefault((workload, kind), []).append(got[kind])
                    ratio = got[kind] / got["plain"]
                    ratios.setdefault((workload, kind), []).append(ratio)
                    line.append(f"{kind} {got[kind]:8,.0f} x{ratio:.2f}")
                print(f"[rep {rep}] {workload}  " + "  ".join(line), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nmedians over {args.reps} repetitions (ev/s; ratio to plain, median of the "
          "per-repetition ratios), SQLite WAL synchronous=FULL")
    print(f"{'workload':9}{'kind':16}{'ev/s':>10}{'ratio':>8}   goal (issue 15, esctl)")
    for workload in ("W1", "W2"):
        for kind in KINDS:
            rate = statistics.median(rates[workload, kind])
            ratio = statistics.median(ratios[workload, kind])
            goal = f">= {GOALS[workload]}" if kind in ("esctl", "esctl schema") else ""
            print(f"{workload:9}{kind:16}{rate:10,.0f}{ratio:8.2f}   {goal}")
    print(f"load {os.getloadavg()[0]:.2f} at the end", file=sys.stderr)


if __name__ == "__main__":
    main()
