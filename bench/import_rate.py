"""Import speed: ``import_events`` against the store's raw batch append, in the same run.

The issue's target: import at least 0.5x the store's raw batch append rate. The raw run
appends N events in batches of 100 per aggregate with ``store.append``; the export of that
store is then imported into a fresh store (batch of 1,000 lines per transaction).

    python bench/import_rate.py [--events 50000] [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
import uuid
from pathlib import Path

from esctl_lib import Event, EventRegistry, EventStore, export_events, import_events, open_store

DSN = os.environ.get("ESCTL_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def open_fresh(backend: str, folder: Path, name: str) -> tuple[EventStore, str | None]:
    registry = EventRegistry()
    if backend == "sqlite":
        store = open_store(f"sqlite:///{folder / name}.db", registry=registry)
        schema = None
    else:
        schema = f"bench_{name}_{uuid.uuid4().hex[:8]}"
        store = open_store(DSN, schema=schema, registry=registry)
    store.setup()
    return store, schema


def drop(schema: str | None) -> None:
    if schema is None:
        return
    import psycopg
    from psycopg import sql

    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def raw_append(store: EventStore, total: int, batch: int = 100) -> float:
    body = {"title": "x" * 60, "n": 1, "flag": True}
    start = time.perf_counter()
    for _ in range(total // batch):
        aggregate = str(uuid.uuid4())
        store.append([Event(type="bench_event", aggregate_id=aggregate, body=body)
                      for _ in range(batch)], expected_version=0)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source, s1 = open_fresh(args.backend, folder, "source")
        target, s2 = open_fresh(args.backend, folder, "target")
        try:
            raw = raw_append(source, args.events)
            buffer = io.StringIO()
            start = time.perf_counter()
            count = export_events(source, buffer)
            exported = time.perf_counter() - start
            buffer.seek(0)
            start = time.perf_counter()
            result = import_events(target, buffer, registry=None)
            imported = time.perf_counter() - start
        finally:
            source.close()
            target.close()
            drop(s1)
            drop(s2)
    assert result.imported == count == args.events // 100 * 100
    raw_rate, import_rate = count / raw, count / imported
    print(f"{args.backend}: {count} events")
    print(f"  raw batch append (100/aggregate) {raw_rate:10,.0f} events/s")
    print(f"  export                           {count / exported:10,.0f} events/s")
    print(f"  import (check + append)          {import_rate:10,.0f} events/s")
    verdict = "OK" if import_rate >= 0.5 * raw_rate else "UNDER TARGET"
    print(f"  import / raw = {import_rate / raw_rate:.2f} (target >= 0.5): {verdict}")


if __name__ == "__main__":
    main()
