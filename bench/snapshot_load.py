"""Loading an aggregate with and without snapshots (issue 14 part 1).

For aggregates of 10, 100 and 10,000 events (the anchor bench's ~100-byte bodies, saved
100 per ``Repository.save``) plus 10,099 events (a snapshot at 10,000 and the longest
tail an interval of 100 leaves), on PostgreSQL and SQLite, it times one
``Repository.load``:

  esctl full      a class without ``snapshot_every``: the whole history (as before)
  esctl snapshot  the same stream under a class with ``snapshot_every = 100``: the newest
                  snapshot and the events after it
  raw full        sqlite3 / psycopg: SELECT the aggregate's events, json-decode the bodies
  raw snapshot    SELECT the snapshot row and the events after it (PostgreSQL: one
                  statement, like esctl), json-decode state and bodies
  eventsourcing   the Python ``eventsourcing`` library (if installed) with
                  ``snapshotting_intervals = {Item: 100}``: ``app.repository.get(id)``

Each figure is the median of many loads (after a warm-up), best of ``--reps`` repetitions,
all systems in the same run. It also times the saves that write a snapshot: after the
append (what ``Repository.save`` does) against in the same transaction as the events.

PostgreSQL: fresh schemas in the database of ``ESCTL_TEST_POSTGRES_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/test``), dropped at the end. SQLite: temporary files,
WAL, synchronous=FULL (esctl's default, and eventsourcing's).

    python bench/snapshot_load.py                    # both backends, 3 repetitions
    python bench/snapshot_load.py --backend sqlite --reps 1
    python bench/snapshot_load.py --profile          # cProfile of a 10-event snapshot load
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from esctl_lib import Aggregate, Event, Repository, handles, open_store
from esctl_lib.stores.base import EventStore

DSN = os.environ.get("ESCTL_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
SIZES = (10, 100, 10_000, 10_099)
EVERY = 100


def body(i: int) -> dict[str, Any]:
    """The anchor bench's event body (about 100 bytes of JSON)."""
    return {"title": f"Item {i:08d} title", "n": i, "amount": 1234.56,
            "tags": ["red", "blue"], "ok": True}


class BenchHappened(Event, type_name="bench_snapshot_happened"):
    pass


class Item(Aggregate):
    def __init__(self, aggregate_id: Any, events: Any = ()) -> None:
        self.count = 0
        self.last = ""
        super().__init__(aggregate_id, events)

    @handles(BenchHappened)
    def _happened(self, event: Event) -> None:
        self.count += 1
        self.last = event.body["title"]

    def happen(self, i: int) -> None:
        self.apply(BenchHappened(aggregate_id=self.id, body=body(i)))


class SnapItem(Item):
    snapshot_every = EVERY


def median_time(fn: Callable[[], Any], *, budget: float = 0.6, at_most: int = 400) -> float:
    """Median seconds of one call, over as many calls as fit in ``budget`` (after 3 warm-ups)."""
    for _ in range(3):
        fn()
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < at_most and (len(times) < 5 or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fill(store: EventStore, count: int) -> str:
    """One aggregate of ``count`` events, 100 per save, snapshots every 100 (SnapItem)."""
    repo = Repository(store)
    item = SnapItem(str(uuid.uuid4()))
    for i in range(count):
        item.happen(i)
        if len(item.changes) == 100:
            repo.save(item)
    repo.save(item)
    return item.id


# -- raw baselines ------------------------------------------------------------------------------

def raw_sqlite(path: str, aggregate_id: str) -> tuple[Callable[[], Any], Callable[[], Any]]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    snapshot_type = SnapItem.snapshot_type()

    def full() -> Any:
        rows = conn.execute("SELECT id, type, body, version FROM events WHERE aggregate_id = ? "
                            "AND version >= 1 ORDER BY version", (aggregate_id,)).fetchall()
        return [json.loads(r[2]) for r in rows]

    def snap() -> Any:
        row = conn.execute("SELECT version, state FROM snapshots WHERE aggregate_id = ? AND "
                           "aggregate_type = ? AND snapshot_version = 1",
                           (aggregate_id, snapshot_type)).fetchone()
        state = json.loads(row[1]) if row else None
        start = row[0] + 1 if row else 1
        rows = conn.execute("SELECT id, type, body, version FROM events WHERE aggregate_id = ? "
                            "AND version >= ? ORDER BY version", (aggregate_id, start)).fetchall()
        return state, [json.loads(r[2]) for r in rows]

    return full, snap


def raw_pg(schema: str, aggregate_id: str) -> tuple[Callable[[], Any], Callable[[], Any]]:
    import psycopg

    conn = psycopg.connect(DSN, autocommit=True)
    conn.execute(f'SET search_path TO "{schema}"')
    snapshot_type = SnapItem.snapshot_type()
    full_sql = ("SELECT id, type, body::text, version FROM events WHERE aggregate_id = %s "
                "ORDER BY version")
    snap_sql = """
        WITH s AS (SELECT version, state::text AS state FROM snapshots
                   WHERE aggregate_id = %(a)s AND aggregate_type = %(t)s
                   AND snapshot_version = 1)
        SELECT NULL::bigint, NULL::text, s.state, s.version FROM s
        UNION ALL
        SELECT id, type, body::text, version FROM events
        WHERE aggregate_id = %(a)s AND version > coalesce((SELECT version FROM s), 0)
        ORDER BY 4"""
    cur = conn.cursor()

    def full() -> Any:
        rows = cur.execute(full_sql, (aggregate_id,), prepare=True).fetchall()
        return [json.loads(r[2]) for r in rows]

    def snap() -> Any:
        rows = cur.execute(snap_sql, {"a": aggregate_id, "t": snapshot_type},
                           prepare=True).fetchall()
        return [json.loads(r[2]) for r in rows]

    return full, snap


# -- eventsourcing --------------------------------------------------------------------------

_ES: dict[str, Any] = {}


def es_classes() -> dict[str, Any] | None:
    """The eventsourcing aggregate and application, defined once (topics are global)."""
    if _ES:
        return _ES
    try:
        from eventsourcing.application import Application
        from eventsourcing.domain import Aggregate as EsAggregate
        from eventsourcing.domain import event
    except ImportError:
        return None

    class EsItem(EsAggregate):
        @event("Created")
        def __init__(self) -> None:
            self.count = 0

        @event("Happened")
        def happen(self, title: str, n: int, amount: float, tags: list[str], ok: bool) -> None:
            self.count += 1

    class App(Application):  # type: ignore[type-arg]
        snapshotting_intervals = {EsItem: EVERY}

    _ES.update(item=EsItem, app=App)
    return _ES


def eventsourcing_load(backend: str, tmp: Path, count: int) -> float | None:
    classes = es_classes()
    if classes is None:
        return None
    EsItem, App = classes["item"], classes["app"]
    if backend == "sqlite":
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
               "SQLITE_DBNAME": str(tmp / f"es_{count}.sqlite")}
    else:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(DSN)
        schema = f"bench_es_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        env = {"PERSISTENCE_MODULE": "eventsourcing.postgres",
               "POSTGRES_DBNAME": str(params.get("dbname", "test")),
               "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
               "POSTGRES_PORT": str(params.get("port", "5432")),
               "POSTGRES_USER": str(params.get("user", "postgres")),
               "POSTGRES_PASSWORD": str(params.get("password", "")),
               "POSTGRES_SCHEMA": schema}
    app = App(env=env)
    try:
        item = EsItem()
        for i in range(count - 1):  # the Created event counts as one
            item.happen(**body(i))
            if len(item.pending_events) >= 100:  # type: ignore[attr-defined]
                app.save(item)
        app.save(item)
        return median_time(lambda: app.repository.get(item.id))
    finally:
        app.close()
        if backend == "postgres":
            import psycopg

            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- one repetition -------------------------------------------------------------------------

def open_bench_store(backend: str, tmp: Path) -> tuple[EventStore, Any]:
    if backend == "sqlite":
        path = tmp / f"esctl_{uuid.uuid4().hex[:8]}.db"
        store = open_store(f"sqlite:///{path}")
        store.setup()
        return store, str(path)
    schema = f"bench_snap_{uuid.uuid4().hex[:8]}"
    store = open_store(DSN, schema=schema)
    store.setup()
    return store, schema


def drop(backend: str, where: Any) -> None:
    if backend == "postgres":
        import psycopg

        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{where}" CASCADE')


def repetition(backend: str, tmp: Path, with_es: bool) -> dict[str, dict[int, float]]:
    store, where = open_bench_store(backend, tmp)
    out: dict[str, dict[int, float]] = {k: {} for k in (
        "esctl full", "esctl snapshot", "raw full", "raw snapshot", "eventsourcing")}
    try:
        repo = Repository(store)
        ids = {n: fill(store, n) for n in SIZES}
        raws = {n: (raw_sqlite(where, ids[n]) if backend == "sqlite" else raw_pg(where, ids[n]))
                for n in SIZES}
        for n in SIZES:
            agg = ids[n]
            out["esctl full"][n] = median_time(lambda a=agg: repo.load(Item, a))
            out["esctl snapshot"][n] = median_time(lambda a=agg: repo.load(SnapItem, a))
            full, snap = raws[n]
            out["raw full"][n] = median_time(full)
            out["raw snapshot"][n] = median_time(snap)
            assert repo.load(SnapItem, agg).count == repo.load(Item, agg).count == n
        if with_es:
            for n in SIZES:
                es = eventsourcing_load(backend, tmp, n)
                if es is not None:
                    out["eventsourcing"][n] = es
        out.update(save_costs(store))
    finally:
        store.close()
        drop(backend, where)
    return out


def save_costs(store: EventStore) -> dict[str, dict[int, float]]:
    """One 1-event save that crosses a multiple: snapshot after the append vs in the same
    transaction, beside a save that writes no snapshot."""
    from esctl_lib.stores.base import Snapshot

    repo = Repository(store)
    plain, after, same = [], [], []
    for _ in range(60):
        item = SnapItem(str(uuid.uuid4()))
        for i in range(EVERY - 1):
            item.happen(i)
        repo.save(item)
        item.happen(EVERY)
        t0 = time.perf_counter()
        repo.save(item)  # crosses 100: append, then the snapshot upsert
        after.append(time.perf_counter() - t0)
        item.happen(EVERY + 1)
        t0 = time.perf_counter()
        repo.save(item)  # no snapshot
        plain.append(time.perf_counter() - t0)
        item.happen(EVERY + 2)
        events = list(item.changes)
        t0 = time.perf_counter()
        state = store.encoder.encode_body(item.snapshot_state())
        with store.transaction() as tx:
            tx.append(events, expected_version=item.version - 1)
            tx.save_snapshot(Snapshot(item.id, SnapItem.snapshot_type(), item.version, 1,
                                      state, time.time()))
        same.append(time.perf_counter() - t0)
        item.clear_changes()
    return {"save, no snapshot": {1: statistics.median(plain)},
            "save + snapshot after": {1: statistics.median(after)},
            "save + snapshot same tx": {1: statistics.median(same)}}


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("both", "sqlite", "postgres"), default="both")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-eventsourcing", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if args.profile:
            profile(backends[0], tmp)
            return
        for backend in backends:
            reps = [repetition(backend, tmp, not args.no_eventsourcing)
                    for _ in range(args.reps)]
            best = {k: {n: min(r[k][n] for r in reps if n in r[k]) for n in reps[0][k]}
                    for k in reps[0]}
            print(f"\n## {backend}: one load, ms (median of many loads, best of {args.reps})")
            print(f"{'events':>8} | {'esctl full':>10} | {'raw full':>9} | {'esctl snap':>10} | "
                  f"{'raw snap':>9} | {'snap/raw':>8} | {'eventsourcing':>13} | {'snap/full':>9}")
            for n in SIZES:
                e_full, e_snap = best["esctl full"][n], best["esctl snapshot"][n]
                r_snap = best["raw snapshot"][n]
                es = best["eventsourcing"].get(n)
                print(f"{n:>8} | {ms(e_full):>10} | {ms(best['raw full'][n]):>9} | "
                      f"{ms(e_snap):>10} | {ms(r_snap):>9} | {e_snap / r_snap:>8.2f} | "
                      f"{ms(es):>13} | {e_snap / e_full:>9.2f}")
            print(f"\n## {backend}: one save of one event, ms (median of 60, best of {args.reps})")
            for key in ("save, no snapshot", "save + snapshot after", "save + snapshot same tx"):
                print(f"  {key:<26} {ms(best[key][1])}")


def profile(backend: str, tmp: Path) -> None:
    import cProfile
    import pstats

    store, where = open_bench_store(backend, tmp)
    try:
        agg = fill(store, 10)
        repo = Repository(store)
        with cProfile.Profile() as prof:
            for _ in range(3000):
                repo.load(SnapItem, agg)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    finally:
        store.close()
        drop(backend, where)


if __name__ == "__main__":
    main()
