"""Type-filtered reads where the type is 1 % of the stream (issue 15).

PostgreSQL schema 3 drops the ``(type, tx, id)`` index (a filtered page is read through
the stream's ``(tx, id)`` index with the type as a filter), SQLite schema 4 the
``(type, id)`` index (a rowid range scan with the filter). This prints what that costs,
beside an unfiltered read of the same store in the same run:

  catch-up   read_page(types=[rare]) from 0 to the head, pages of 500: rare events/s and
             stream events covered/s; the unfiltered catch-up (read_page, pages of 500)
  tail       read_page(types=[rare]) from 1,000 events before the head (what ``esctl tail
             --type`` does once it has caught up): ms per read
  latest / estimate   latest_position(types=[rare]) and estimate_count(types=[rare]) from 0

    python bench/typed_reads.py [--backend postgres|sqlite] [--events 200000] [--reps 3]
    python bench/typed_reads.py --backend sqlite --at-schema 3   # SQLite with the index

``--at-schema N`` sets the store up with the schema files up to N only (the queries are
this code's: on PostgreSQL the filtered read no longer uses a type index even if present).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from unittest import mock

from esctl_lib import Event, open_store
from esctl_lib.stores.schema_files import schema_files

DSN = os.environ.get("ESCTL_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def fill(store, events: int) -> None:  # type: ignore[no-untyped-def]
    agg = str(uuid.uuid4())
    batch = 1000
    for start in range(0, events, batch):
        store.append([Event(aggregate_id=agg, type="rare" if (start + i) % 100 == 50 else "common",
                            body={"i": start + i, "title": f"Item {start + i:08d}"})
                      for i in range(batch)])
    with store.transaction() as tx:
        tx.execute("ANALYZE events" if store.backend == "postgresql" else "ANALYZE")


def catch_up(store, types):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    pos, got = 0, 0
    while True:
        page = store.read_page(pos, types=types, limit=500)
        got += len(page.events)
        if page.end == pos:
            break
        pos = page.end
    return time.perf_counter() - t0, got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--at-schema", type=int, default=None)
    args = parser.parse_args()
    schema = f"bench_typed_{uuid.uuid4().hex[:8]}"
    folder = tempfile.TemporaryDirectory()
    if args.backend == "postgres":
        store = open_store(DSN, schema=schema)
        module = "esctl_lib.stores.postgres.store.schema_files"
    else:
        store = open_store(f"sqlite:///{Path(folder.name) / 'events.db'}")
        module = "esctl_lib.stores.sqlite.store.schema_files"
    try:
        if args.at_schema is None:
            store.setup()
        else:
            upto = args.at_schema
            with mock.patch(module, lambda b: [f for f in schema_files(b) if f.version <= upto]):
                store.setup()
        print(f"{args.backend} schema version {store.schema_version()}, {args.events:,} "
              "events, 1 % 'rare'", flush=True)
        fill(store, args.events)
        head = store.latest_position()
        results: dict[str, list[float]] = {}
        for _rep in range(args.reps):
            secs, got = catch_up(store, ["rare"])
            results.setdefault("typed catch-up rare ev/s", []).append(got / secs)
            results.setdefault("typed catch-up stream ev/s", []).append(args.events / secs)
            secs, got = catch_up(store, None)
            results.setdefault("unfiltered catch-up ev/s", []).append(got / secs)
            t0 = time.perf_counter()
            for _ in range(20):
                store.read_page(head - 1000, types=["rare"], limit=500)
            results.setdefault("tail --type read ms", []).append(
                (time.perf_counter() - t0) / 20 * 1000)
            t0 = time.perf_counter()
            for _ in range(5):
                store.latest_position(types=["rare"])
            results.setdefault("latest_position(rare) ms", []).append(
                (time.perf_counter() - t0) / 5 * 1000)
            t0 = time.perf_counter()
            for _ in range(5):
                store.estimate_count(after=0, types=["rare"])
            results.setdefault("estimate_count(rare) ms", []).append(
                (time.perf_counter() - t0) / 5 * 1000)
        for name, values in results.items():
            print(f"  {name:30} median {statistics.median(values):12,.2f}   "
                  f"runs {' '.join(f'{v:,.1f}' for v in values)}")
    finally:
        store.close()
        folder.cleanup()
        if args.backend == "postgres":
            import psycopg

            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
