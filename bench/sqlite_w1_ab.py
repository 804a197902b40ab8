"""SQLite W1 (or W2) variants interleaved in one process: which change moves the ratio to raw.

Separate runs of ``user_path.py`` swing by ±4 % with the host (raw FULL W1 alone moved
from 4,956 to 5,944 ev/s inside one run), more than most single changes are worth. Here
every variant runs in the same process, in alternating rounds of ``--round`` W1 saves (the
anchor's sizes: 1,000 aggregates, events built inside the timed region, FULL durability,
on disk), so the variants share the host's noise; the figure is the median over rounds of
µs a save, and of each variant's ratio to the plain raw loop's rate in the same round.
``--workload W2`` saves batches of 100 events instead (the raw loop: ``BEGIN IMMEDIATE``,
``executemany``, ``COMMIT``).

Variants:
  raw        the baseline's plain table and loop (``user_path.py``)
  esctl      ``item.happen(**body)`` + ``Repository.save(item)`` on a store made by
             this code's ``setup``
  esctl@3    the same on a store stopped at schema 3 (with the ``(type, id)`` index)
  esctl:p2048  the same on a store whose file was made with ``PRAGMA page_size = 2048``
             (any ``:pN``, with or without ``@N``)
  floor      no framework: the raw loop into the table this code's ``setup`` makes, with
             esctl's row (``bench/sqlite_floor.py``)

    python bench/sqlite_w1_ab.py [--rounds 40] [--round 250] [--variants raw,esctl,esctl@3]
    python bench/sqlite_w1_ab.py --workload W2 --round 20
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

from user_path import INSERT_SQLITE, RAW_TYPE, SQLITE_PLAIN_DDL, Item, body, raw_sqlite_connect

from esctl_lib import Repository, open_store
from esctl_lib.stores.schema_files import schema_files
from esctl_lib.stores.sqlite import split_sql

AGGREGATES = 1_000

BATCH = 100


def store_at(path: str, version: int | None, page_size: int | None = None) -> None:
    """A new store at ``version`` (None: every schema file), made as that version's
    ``setup`` would, in a file of ``page_size`` pages (None: SQLite's default)."""
    if page_size is not None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute(f"PRAGMA page_size = {int(page_size)}")
        conn.execute("VACUUM")  # the page size holds once the file exists
        conn.close()
    store = open_store(f"sqlite:///{path}")
    if version is None:
        store.setup()
        store.close()
        return
    store.close()
    from esctl_lib.stores.sqlite.uuids import register

    conn = sqlite3.connect(path, isolation_level=None)
    register(conn)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE schema_version "
                 "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
    for f in schema_files("sqlite"):
        if f.version > version:
            break
        for statement in split_sql(f.sql):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                     (f.version, f.name, time.time()))
    conn.close()


def variant(name: str, folder: str, batch: int) -> Callable[[int, int], None]:
    """A function running saves ``start`` … ``start + n - 1`` of ``name``, ``batch``
    events each."""
    path = os.path.join(folder, name.replace("@", "_at_").replace(":", "_") + ".sqlite")
    if name == "raw":
        conn = raw_sqlite_connect(path)
        conn.execute(SQLITE_PLAIN_DDL)
        ids = [str(uuid.uuid4()) for _ in range(AGGREGATES)]
        versions = [0] * AGGREGATES

        def raw(start: int, n: int) -> None:
            for i in range(start, start + n):
                k = i % AGGREGATES
                v = versions[k] + 1
                conn.execute(INSERT_SQLITE, (ids[k], RAW_TYPE, json.dumps(body(i)), v))
                versions[k] = v

        def raw_batches(start: int, n: int) -> None:
            for b in range(start, start + n):
                k = b % AGGREGATES
                v0 = versions[k]
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(INSERT_SQLITE, [
                    (ids[k], RAW_TYPE, json.dumps(body(b * batch + j)), v0 + 1 + j)
                    for j in range(batch)])
                conn.execute("COMMIT")
                versions[k] = v0 + batch

        return raw if batch == 1 else raw_batches
    base, _, page = name.partition(":p")
    if base == "floor":  # no framework: the raw loop into esctl's table (sqlite_floor.py)
        from sqlite_floor import esctl_table, raw_loop

        store_at(path, None, int(page) if page else None)
        table = esctl_table(path)
        loops = {"W1": raw_loop(table, False, "W1", 1), "W2": raw_loop(table, False, "W2", batch)}
        loop = loops["W1" if batch == 1 else "W2"]

        def floor(start: int, n: int) -> None:
            for _ in range(n):
                loop()

        return floor
    at = int(base.split("@")[1]) if "@" in base else None
    store_at(path, at, int(page) if page else None)
    store = open_store(f"sqlite:///{path}")
    if at is not None:
        store.setup = lambda: []  # type: ignore[method-assign]
    repo = Repository(store)
    items = [Item(uuid.uuid4()) for _ in range(AGGREGATES)]
    store.latest_position()

    def esctl(start: int, n: int) -> None:
        for i in range(start, start + n):
            item = items[i % AGGREGATES]
            for j in range(batch):
                item.happen(**body(i * batch + j))
            repo.save(item)

    return esctl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--round", type=int, default=250, help="saves per variant a round")
    parser.add_argument("--variants", default="raw,esctl,esctl@3")
    parser.add_argument("--workload", choices=("W1", "W2"), default="W1")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    names = args.variants.split(",")
    folder = tempfile.mkdtemp(prefix="esctl-w1ab-", dir=os.environ.get("ESCTL_BENCH_DIR"))
    try:
        batch = 1 if args.workload == "W1" else BATCH
        runs = {name: variant(name, folder, batch) for name in names}
        per_save: dict[str, list[float]] = {name: [] for name in names}
        ratio: dict[str, list[float]] = {name: [] for name in names if name != "raw"}
        for r in range(args.rounds):
            order = names if r % 2 == 0 else names[::-1]
            took: dict[str, float] = {}
            for name in order:
                t0 = time.perf_counter()
                runs[name](r * args.round, args.round)
                took[name] = time.perf_counter() - t0
            for name in names:
                per_save[name].append(took[name] / (args.round * batch) * 1e6)
                if name != "raw" and "raw" in took:
                    ratio[name].append(took["raw"] / took[name])
        result = {name: {"us_per_event": round(statistics.median(per_save[name]), 1),
                         "ratio_to_raw": (round(statistics.median(ratio[name]), 3)
                                          if ratio.get(name) else None)}
                  for name in names}
        if args.json:
            json.dump(result, sys.stdout, indent=2)
            print()
            return
        print(f"{args.rounds} rounds of {args.round} {args.workload} saves of {batch} "
              "event(s) each, medians")
        for name, row in result.items():
            extra = "" if row["ratio_to_raw"] is None else f"   ratio {row['ratio_to_raw']:.3f}"
            print(f"  {name:12s} {row['us_per_event']:8.1f} µs an event{extra}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
