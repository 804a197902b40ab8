"""PostgreSQL W1 variants interleaved in one process, with the client's CPU a save.

The PostgreSQL sibling of ``sqlite_w1_ab.py``: alternating rounds of ``--round`` W1 saves
(1,000 aggregates, each given its first event before timing, so every timed save is at a
known head), events built inside the timed region. Per variant it prints the median wall
µs a save, the process's CPU µs a save, the main thread's share of it, and the median
ratio to the raw loop in the same round. On a 2-core machine the client's CPU competes
with the server's backend, so it shows in the wall time.

  raw                 the anchor's raw loop: a plain table, one autocommit INSERT a save
  esctl               ``item.happen(**body)`` + ``Repository.save(item)``
  esctl:notify=False  the same on a store that sends no notifications

    python bench/pg_w1_ab.py [--rounds 60] [--round 250]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from user_path import DSN, INSERT_PG, PG_PLAIN_DDL, RAW_TYPE, Item, body

from esctl_lib import Repository, open_store

AGGREGATES = 1_000
Run = Callable[[int, int], None]


def raw_variant(schema: str) -> tuple[Run, Callable[[], None]]:
    conn = psycopg.connect(DSN, autocommit=True)
    conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
    conn.execute(PG_PLAIN_DDL)
    ids = [uuid.uuid4() for _ in range(AGGREGATES)]
    versions = [0] * AGGREGATES
    cur = conn.cursor()

    def run(start: int, n: int) -> None:
        for i in range(start, start + n):
            k = i % AGGREGATES
            versions[k] += 1
            cur.execute(INSERT_PG, (ids[k], RAW_TYPE, Jsonb(body(i)), versions[k]))

    run(0, AGGREGATES)
    return run, conn.close


def esctl_variant(schema: str, **options: Any) -> tuple[Run, Callable[[], None]]:
    store = open_store(DSN, schema=schema, **options)
    store.setup()
    repo = Repository(store)
    items = [Item(uuid.uuid4()) for _ in range(AGGREGATES)]

    def run(start: int, n: int) -> None:
        for i in range(start, start + n):
            item = items[i % AGGREGATES]
            item.happen(**body(i))
            repo.save(item)

    run(0, AGGREGATES)
    return run, store.close


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--round", type=int, default=250, help="saves per variant a round")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    schemas = {"raw": f"pgab_raw_{tag}", "esctl": f"pgab_esctl_{tag}",
               "esctl:notify=False": f"pgab_quiet_{tag}"}
    with psycopg.connect(DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schemas["raw"])))
    closers: list[Callable[[], None]] = []
    try:
        runs: dict[str, Run] = {}
        for name, schema in schemas.items():
            if name == "raw":
                runs[name], close = raw_variant(schema)
            else:
                runs[name], close = esctl_variant(schema, **(
                    {"notify": False} if name.endswith("notify=False") else {}))
            closers.append(close)
        wall: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        main_cpu: dict[str, list[float]] = {name: [] for name in runs}
        names = list(runs)
        for r in range(args.rounds):
            start = AGGREGATES + r * args.round
            for name in names if r % 2 == 0 else names[::-1]:
                c0, m0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
                runs[name](start, args.round)
                wall[name].append((time.perf_counter() - t0) / args.round * 1e6)
                cpu[name].append((time.process_time() - c0) / args.round * 1e6)
                main_cpu[name].append((time.thread_time() - m0) / args.round * 1e6)
        print(f"{args.rounds} rounds of {args.round} W1 saves each, medians (µs a save)")
        for name in names:
            ratio = statistics.median(a / b for a, b in zip(wall["raw"], wall[name],
                                                             strict=True))
            print(f"  {name:20s} wall {statistics.median(wall[name]):7.1f}"
                  f"   cpu {statistics.median(cpu[name]):6.1f}"
                  f" (main thread {statistics.median(main_cpu[name]):6.1f})"
                  f"   ratio {ratio:.3f}")
    finally:
        for close in closers:
            close()
        with psycopg.connect(DSN, autocommit=True) as admin:
            for schema in schemas.values():
                admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(schema)))


if __name__ == "__main__":
    main()
