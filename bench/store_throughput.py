"""Store throughput against raw drivers, measured side by side in one run.

PostgreSQL (against raw psycopg on the same server):
  W1  single-event appends with expected version across 1,000 aggregates (~100-byte body);
      raw: one autocommit INSERT per event.
  W2  events in batches of 100 per aggregate; raw: one multi-row INSERT per batch.
  W3  read everything in global order, pages of 1,000, bodies decoded;
      raw: SELECT ... WHERE id > $pos ORDER BY id LIMIT 1000, jsonb decoded by psycopg.
  W1 with 4 writer processes: esctl against an EventSourcery-style append (its
      writeEvents function, ported: aggregates-table version guard, the global
      pg_advisory_xact_lock(-1), the insert, NOTIFY in the transaction).
  NOTIFY cost with 4 writer processes: raw INSERTs with and without a NOTIFY in the same
      transaction, and esctl with its notifier thread on and off.
SQLite (against raw sqlite3, same file layout, WAL, same ``synchronous``): W1, W2, W3.

Raw and esctl alternate in chunks so that a noisy machine hurts both alike. Targets:
PostgreSQL W1 >= 0.9, W2 >= 1.2, W3 >= 1.2, 4 writers >= 1.5x the global lock;
SQLite W1 >= 0.8, W2 >= 0.7, W3 >= 0.7.

    python bench/store_throughput.py [--backend postgres|sqlite|both] [--scale 0.25]
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing as mp
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from esctl_lib import Event, EventRegistry, EventStore, open_store

DSN = os.environ.get("ESCTL_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
BODY = {"name": "widget", "sku": "W-000123", "qty": 3, "price": "10.50", "note": "x" * 24}
TYPE = "item_added"
CHUNKS = 10

PG_RAW_DDL = """
CREATE TABLE events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, uuid uuid NOT NULL UNIQUE,
    aggregate_id uuid NOT NULL, type text NOT NULL, body jsonb NOT NULL,
    version integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
    correlation_id uuid, causation_id uuid, metadata jsonb, UNIQUE (aggregate_id, version));
CREATE INDEX ON events (type, id);
"""
# EventSourcery's writeEvents (event_sourcery-postgres), ported: the aggregates table is the
# version guard, then the global pg_advisory_xact_lock(-1), the inserts, one NOTIFY.
PG_GLOBAL_LOCK_FN = """
CREATE TABLE aggregates (aggregate_id uuid PRIMARY KEY, version bigint DEFAULT 1);
CREATE FUNCTION write_events(_aggregate_id uuid, _types text[], _expected integer,
                             _bodies jsonb[], _uuids uuid[], _lock boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE current_version integer; num_events integer; event_id bigint;
BEGIN
  num_events := array_length(_bodies, 1);
  SELECT version INTO current_version FROM aggregates WHERE aggregate_id = _aggregate_id;
  IF NOT FOUND THEN
    IF _expected IS NULL OR _expected = 0 THEN
      INSERT INTO aggregates (aggregate_id, version) VALUES (_aggregate_id, num_events);
      current_version := 0;
    ELSE
      RAISE 'Concurrency conflict. Current version: 0, expected version: %', _expected;
    END IF;
  ELSIF _expected IS NULL THEN
    UPDATE aggregates SET version = version + num_events WHERE aggregate_id = _aggregate_id
      RETURNING version - num_events INTO current_version;
  ELSE
    UPDATE aggregates SET version = version + num_events
      WHERE aggregate_id = _aggregate_id AND version = _expected;
    IF NOT FOUND THEN
      RAISE 'Concurrency conflict. Last known current version: %, expected version: %',
        current_version, _expected;
    END IF;
  END IF;
  IF _lock THEN
    PERFORM pg_advisory_xact_lock(-1);
  END IF;
  FOR i IN 1..num_events LOOP
    INSERT INTO events (uuid, aggregate_id, type, body, version)
      VALUES (_uuids[i], _aggregate_id, _types[i], _bodies[i], current_version + i)
      RETURNING id INTO event_id;
  END LOOP;
  PERFORM pg_notify('new_event', event_id::text);
END $$;
"""
WRITE_EVENTS = "SELECT write_events(%s, %s, %s, %s, %s, %s)"
RAW_INSERT = ("INSERT INTO events (uuid, aggregate_id, type, body, version) "
              "VALUES (%s, %s, %s, %s, %s)")
RAW_INSERT_NOTIFY = ("WITH i AS (" + RAW_INSERT + " RETURNING id) "
                     "SELECT pg_notify('bench_raw', '') FROM i")
RAW_READ = ("SELECT id, uuid, aggregate_id, type, body, version, created_at FROM events "
            "WHERE id > %s ORDER BY id LIMIT 1000")


# -- workloads: each side gets the same inputs --------------------------------------------
def w1_inputs(n: int, aggregates: int) -> list[tuple[str, int]]:
    """(aggregate, expected version) for n single-event appends over ``aggregates``."""
    aggs = [str(uuid.uuid4()) for _ in range(aggregates)]
    versions = dict.fromkeys(aggs, 0)
    out = []
    for i in range(n):
        agg = aggs[i % aggregates]
        out.append((agg, versions[agg]))
        versions[agg] += 1
    return out


def event(agg: str) -> Event:
    return Event(aggregate_id=agg, type=TYPE, body=BODY)


class Timer:
    """Accumulates the time and the count of one side."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.count = 0

    def run(self, fn: Callable[[], int]) -> None:
        start = time.perf_counter()
        self.count += fn()
        self.seconds += time.perf_counter() - start

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def alternate(chunks: list[tuple[Callable[[], int], Callable[[], int]]]) -> tuple[Timer, Timer]:
    """Run (esctl, raw) chunk pairs, swapping who goes first each time."""
    mine, raw = Timer(), Timer()
    for i, (fm, fr) in enumerate(chunks):
        if i % 2:
            raw.run(fr)
            mine.run(fm)
        else:
            mine.run(fm)
            raw.run(fr)
    return mine, raw


def split(items: list[Any], parts: int) -> list[list[Any]]:
    size = -(-len(items) // parts)
    return [items[i:i + size] for i in range(0, len(items), size)]


def report(rows: list[tuple[str, float, float, float, str]]) -> None:
    print(f"{'workload':44s} {'esctl/s':>10s} {'baseline/s':>11s} {'ratio':>6s}  target")
    for name, mine, base, target, base_name in rows:
        ratio = mine / base if base else 0.0
        verdict = "ok" if ratio >= target else "MISSED"
        print(f"{name:44s} {mine:10,.0f} {base:11,.0f} {ratio:6.2f}  >= {target} {verdict}"
              f"  (vs {base_name})")


# -- PostgreSQL ---------------------------------------------------------------------------
def pg_admin() -> Any:
    import psycopg

    return psycopg.connect(DSN, autocommit=True)


def pg_raw_schema(name: str, ddl: str) -> None:
    from psycopg import sql

    with pg_admin() as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(name)))
        conn.execute(ddl.encode())


def pg_drop(*names: str) -> None:
    from psycopg import sql

    with pg_admin() as conn:
        for name in names:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(name)))


def pg_raw_conn(schema: str) -> Any:
    import psycopg

    return psycopg.connect(DSN, autocommit=True, options=f"-c search_path={schema}")


def pg_store(schema: str, **kwargs: Any) -> EventStore:
    store = open_store(DSN, schema=schema, registry=EventRegistry(), **kwargs)
    store.setup()
    return store


def pg_single(scale: float, store: EventStore, raw: Any) -> tuple[Timer, Timer]:
    from psycopg.types.json import Jsonb

    n = int(20_000 * scale)
    events = [(event(agg), v) for agg, v in w1_inputs(n, 1000)]
    raw_rows = [(str(uuid.uuid4()), agg, TYPE, BODY, v + 1) for agg, v in w1_inputs(n, 1000)]

    def mine_chunk(part: list[tuple[Event, int]]) -> Callable[[], int]:
        def go() -> int:
            for e, v in part:
                store.append([e], expected_version=v)
            return len(part)
        return go

    def raw_chunk(part: list[tuple[Any, ...]]) -> Callable[[], int]:
        def go() -> int:
            for u, agg, t, body, v in part:
                raw.execute(RAW_INSERT, (u, agg, t, Jsonb(body), v))
            return len(part)
        return go

    return alternate(list(zip([mine_chunk(p) for p in split(events, CHUNKS)],
                              [raw_chunk(p) for p in split(raw_rows, CHUNKS)], strict=True)))


def pg_batches(scale: float, store: EventStore, raw: Any) -> tuple[Timer, Timer]:
    from psycopg.types.json import Jsonb

    batches = int(2000 * scale)
    values = ", ".join(["(%s, %s, %s, %s, %s)"] * 100)
    sql = f"INSERT INTO events (uuid, aggregate_id, type, body, version) VALUES {values}"
    mine = [[event(a) for _ in range(100)] for a in (str(uuid.uuid4()) for _ in range(batches))]
    raws = [[(str(uuid.uuid4()), agg, TYPE, BODY, v + 1) for v in range(100)]
            for agg in (str(uuid.uuid4()) for _ in range(batches))]

    def mine_chunk(part: list[list[Event]]) -> Callable[[], int]:
        def go() -> int:
            for batch in part:
                store.append(batch, expected_version=0)
            return 100 * len(part)
        return go

    def raw_chunk(part: list[list[tuple[Any, ...]]]) -> Callable[[], int]:
        def go() -> int:
            for batch in part:
                params: list[Any] = []
                for u, agg, t, body, v in batch:
                    params += [u, agg, t, Jsonb(body), v]
                raw.execute(sql, params)
            return 100 * len(part)
        return go

    return alternate(list(zip([mine_chunk(p) for p in split(mine, CHUNKS)],
                              [raw_chunk(p) for p in split(raws, CHUNKS)], strict=True)))


def read_all_esctl(store: EventStore) -> int:
    position, total = 0, 0
    while True:
        page = store.read_page(position, limit=1000)
        if not page.events:
            return total
        for e in page.events:
            e.body  # noqa: B018  (decode it, as the baseline does, even if the store is lazy)
        total += len(page.events)
        position = page.end


def read_all_raw(raw: Any) -> int:
    position, total = 0, 0
    while True:
        rows = raw.execute(RAW_READ, (position,)).fetchall()
        if not rows:
            return total
        total += len(rows)
        position = rows[-1][0]


def pg_reads(store: EventStore, raw: Any, rounds: int) -> tuple[Timer, Timer]:
    return alternate([(lambda: read_all_esctl(store), lambda: read_all_raw(raw))
                      for _ in range(rounds)])


# -- PostgreSQL, several writer processes -------------------------------------------------
def _writer(kind: str, schema: str, n: int, start: Any, out: Any) -> None:
    from psycopg.types.json import Jsonb

    inputs = w1_inputs(n, 250)
    if kind.startswith("esctl"):
        store = open_store(DSN, schema=schema, registry=EventRegistry(),
                           notify=kind == "esctl")
        events = [(event(agg), v) for agg, v in inputs]
        start.wait()
        begin = time.perf_counter()
        for e, v in events:
            store.append([e], expected_version=v)
        elapsed = time.perf_counter() - begin
        store.close()
    else:
        conn = pg_raw_conn(schema)
        query = {"lock": WRITE_EVENTS, "nolock": WRITE_EVENTS, "raw": RAW_INSERT,
                 "raw_notify": RAW_INSERT_NOTIFY}[kind]
        rows = [((agg, [TYPE], v, [Jsonb(BODY)], [str(uuid.uuid4())], kind == "lock")
                 if kind in ("lock", "nolock")
                 else (str(uuid.uuid4()), agg, TYPE, Jsonb(BODY), v + 1)) for agg, v in inputs]
        start.wait()
        begin = time.perf_counter()
        for row in rows:
            conn.execute(query, row)
        elapsed = time.perf_counter() - begin
        conn.close()
    out.put(elapsed)


def concurrent(kind: str, schema: str, n: int, writers: int = 4) -> float:
    """Events per second of ``writers`` processes appending n events each."""
    ctx = mp.get_context("spawn")
    out, start = ctx.Queue(), ctx.Barrier(writers)
    procs = [ctx.Process(target=_writer, args=(kind, schema, n, start, out))
             for _ in range(writers)]
    for p in procs:
        p.start()
    times = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return float(writers * n / max(times))


def pg_four_writers(n: int, mine: str, lock_s: str, raw_s: str) -> dict[str, float]:
    """Events/s of 4 writer processes for each kind of append, alternated twice."""
    pg_store(mine).close()
    pg_raw_schema(lock_s, PG_RAW_DDL + PG_GLOBAL_LOCK_FN)
    pg_raw_schema(raw_s, PG_RAW_DDL)
    kinds = (("esctl", mine), ("lock", lock_s), ("nolock", lock_s), ("raw", raw_s),
             ("raw_notify", raw_s), ("esctl_silent", mine))
    with pg_admin() as conn:
        conn.execute("CHECKPOINT")  # start from a clean slate, not mid-checkpoint
    rates: dict[str, float] = {}
    for order in (kinds, kinds[::-1]):  # the second round in reverse: no kind always first
        for kind, schema in order:
            rates[kind] = rates.get(kind, 0.0) + concurrent(kind, schema, n) / 2
    print(f"  4 writers: esctl {rates['esctl']:,.0f}/s; EventSourcery writeEvents with its "
          f"global lock {rates['lock']:,.0f}/s, the same without the lock (unsafe: readers "
          f"may skip) {rates['nolock']:,.0f}/s, so the lane costs "
          f"{1 - rates['lock'] / rates['nolock']:.0%} here")
    print(f"  NOTIFY, 4 writers: raw INSERT {rates['raw']:,.0f}/s, with NOTIFY in the same "
          f"transaction {rates['raw_notify']:,.0f}/s ({rates['raw_notify'] / rates['raw']:.2f}x);"
          f" esctl with its notifier thread {rates['esctl']:,.0f}/s, without "
          f"{rates['esctl_silent']:,.0f}/s ({rates['esctl'] / rates['esctl_silent']:.2f}x)")
    print("  (an esctl append NOTIFYs in its own statement only while the store is quiet, "
          "here a writer's first few; then one notifier thread per process notifies each "
          "commit at once up to 500 commits/s, then one pg_notify per 25 ms for all commits "
          "since the last: bench/notify_contention.py)")
    return rates


def run_postgres(scale: float) -> list[tuple[str, float, float, float, str]]:
    tag = uuid.uuid4().hex[:6]
    mine, raw_s, lock_s, raw4_s = (f"bench_{k}_{tag}" for k in ("esctl", "raw", "lock", "raw4"))
    try:
        store = pg_store(mine)
        pg_raw_schema(raw_s, PG_RAW_DDL)
        raw = pg_raw_conn(raw_s)
        w1 = pg_single(scale, store, raw)
        print(f"  W1 done: esctl {w1[0].rate:,.0f}/s, raw {w1[1].rate:,.0f}/s", flush=True)
        w2 = pg_batches(scale, store, raw)
        print(f"  W2 done: esctl {w2[0].rate:,.0f}/s, raw {w2[1].rate:,.0f}/s", flush=True)
        w3 = pg_reads(store, raw, rounds=4)
        print(f"  W3 done: esctl {w3[0].rate:,.0f}/s, raw {w3[1].rate:,.0f}/s", flush=True)
        store.close()
        raw.close()
        pg_drop(mine, raw_s)  # no vacuum of these tables during the next part
        rates = pg_four_writers(int(20_000 * scale) // 4, f"{mine}_4", lock_s, raw4_s)
        return [
            ("PostgreSQL W1 single appends", w1[0].rate, w1[1].rate, 0.9, "raw INSERT"),
            ("PostgreSQL W2 batches of 100", w2[0].rate, w2[1].rate, 1.2, "raw multi-row"),
            ("PostgreSQL W3 read all, pages of 1000", w3[0].rate, w3[1].rate, 1.2, "raw SELECT"),
            ("PostgreSQL W1, 4 writer processes", rates["esctl"], rates["lock"], 1.5,
             "EventSourcery writeEvents, global lock"),
        ]
    finally:
        pg_drop(mine, f"{mine}_4", raw_s, lock_s, raw4_s)


# -- SQLite -------------------------------------------------------------------------------
def sqlite_raw(path: Path, synchronous: str) -> sqlite3.Connection:
    from esctl_lib.stores.schema_files import schema_files

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.executescript(schema_files("sqlite")[0].sql)
    return conn


SQ_INSERT = ("INSERT INTO events (uuid, aggregate_id, type, body, version, created_at) "
             "VALUES (?, ?, ?, ?, ?, ?)")


def sq_single(scale: float, store: EventStore, raw: sqlite3.Connection) -> tuple[Timer, Timer]:
    n = int(20_000 * scale)
    events = [(event(agg), v) for agg, v in w1_inputs(n, 1000)]
    raws = [(str(uuid.uuid4()), agg, v + 1) for agg, v in w1_inputs(n, 1000)]

    def mine(part: list[tuple[Event, int]]) -> Callable[[], int]:
        def go() -> int:
            for e, v in part:
                store.append([e], expected_version=v)
            return len(part)
        return go

    def base(part: list[tuple[str, str, int]]) -> Callable[[], int]:
        def go() -> int:
            for u, agg, v in part:
                now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
                raw.execute(SQ_INSERT, (u, agg, TYPE, json.dumps(BODY), v, now))
            return len(part)
        return go

    return alternate(list(zip([mine(p) for p in split(events, CHUNKS)],
                              [base(p) for p in split(raws, CHUNKS)], strict=True)))


def sq_batches(scale: float, store: EventStore, raw: sqlite3.Connection) -> tuple[Timer, Timer]:
    batches = int(2000 * scale)
    sql = SQ_INSERT.split(" VALUES ")[0] + " VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?)"] * 100)
    mine = [[event(a) for _ in range(100)] for a in (str(uuid.uuid4()) for _ in range(batches))]
    raws = [str(uuid.uuid4()) for _ in range(batches)]

    def go_mine(part: list[list[Event]]) -> Callable[[], int]:
        def go() -> int:
            for batch in part:
                store.append(batch, expected_version=0)
            return 100 * len(part)
        return go

    def go_raw(part: list[str]) -> Callable[[], int]:
        def go() -> int:
            for agg in part:
                now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
                params: list[Any] = []
                for v in range(1, 101):
                    params += [str(uuid.uuid4()), agg, TYPE, json.dumps(BODY), v, now]
                raw.execute(sql, params)
            return 100 * len(part)
        return go

    return alternate(list(zip([go_mine(p) for p in split(mine, CHUNKS)],
                              [go_raw(p) for p in split(raws, CHUNKS)], strict=True)))


def sq_read_raw(raw: sqlite3.Connection) -> int:
    position, total = 0, 0
    query = RAW_READ.replace("%s", "?")
    while True:
        rows = raw.execute(query, (position,)).fetchall()
        if not rows:
            return total
        for row in rows:
            json.loads(row[4])
        total += len(rows)
        position = rows[-1][0]


def run_sqlite(scale: float, synchronous: str) -> list[tuple[str, float, float, float, str]]:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{folder}/esctl.db", registry=EventRegistry(),
                           synchronous=synchronous)
        store.setup()
        raw = sqlite_raw(Path(folder) / "raw.db", synchronous)
        w1 = sq_single(scale, store, raw)
        w2 = sq_batches(scale, store, raw)
        w3 = alternate([(lambda: read_all_esctl(store), lambda: sq_read_raw(raw))
                        for _ in range(4)])
        store.close()
        raw.close()
    label = f"SQLite ({synchronous})"
    return [
        (f"{label} W1 single appends", w1[0].rate, w1[1].rate, 0.8, "raw sqlite3"),
        (f"{label} W2 batches of 100", w2[0].rate, w2[1].rate, 0.7, "raw multi-row"),
        (f"{label} W3 read all, pages of 1000", w3[0].rate, w3[1].rate, 0.7, "raw SELECT"),
    ]


def pg_w1_anatomy(scale: float) -> None:
    """Where W1's gap lies: the same bare psycopg loop running the raw INSERT, a plain
    INSERT into esctl's table, and esctl's append statement (version check included)."""
    import datetime as dt

    from psycopg.types.json import Jsonb

    from esctl_lib.stores.postgres.append import _INSERT, APPEND_ONE  # diagnostic only

    plain = _INSERT + "VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s::jsonb) RETURNING id"
    tag = uuid.uuid4().hex[:6]
    raw_s, mine = f"bench_araw_{tag}", f"bench_amine_{tag}"
    n = int(20_000 * scale)
    try:
        pg_raw_schema(raw_s, PG_RAW_DDL)
        pg_store(mine).close()
        body, now = json.dumps(BODY), dt.datetime.now(dt.UTC)

        def loop(schema: str, kind: str) -> Callable[[list[tuple[str, int]]], int]:
            cur = pg_raw_conn(schema).cursor()

            def go(part: list[tuple[str, int]]) -> int:
                for agg, v in part:
                    u = str(uuid.uuid4())
                    if kind == "raw":
                        cur.execute(RAW_INSERT, (u, agg, TYPE, Jsonb(BODY), v + 1))
                        continue
                    params: tuple[Any, ...] = (u, agg, TYPE, body, v + 1, now, None, None, None)
                    if kind == "append":
                        params += (agg, v)
                    assert cur.execute(plain if kind == "plain" else APPEND_ONE,
                                       params).fetchall()
                return len(part)
            return go

        kinds = {"raw": loop(raw_s, "raw"), "plain": loop(mine, "plain"),
                 "append": loop(mine, "append")}
        timers = {k: Timer() for k in kinds}
        inputs = {k: split(w1_inputs(n, 1000), CHUNKS) for k in kinds}
        for i in range(CHUNKS):
            for k in (list(kinds) if i % 2 else list(kinds)[::-1]):
                timers[k].run(functools.partial(kinds[k], inputs[k][i]))
        base = timers["raw"].rate
        print("  W1 anatomy (bare psycopg, same loop): raw INSERT "
              f"{1e6 / base:.0f} us; plain INSERT into esctl's table "
              f"{base / timers['plain'].rate:.2f}x its time; esctl's append statement "
              f"(version check) {base / timers['append'].rate:.2f}x", flush=True)
    finally:
        pg_drop(raw_s, mine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("postgres", "sqlite", "both"), default="both")
    parser.add_argument("--scale", type=float, default=0.5,
                        help="fraction of the issue's sizes (1.0: W1 20,000, W2 200,000)")
    parser.add_argument("--synchronous", default="FULL", help="SQLite synchronous mode")
    parser.add_argument("--w1-anatomy", action="store_true",
                        help="PostgreSQL: also time W1's statement parts with bare psycopg")
    args = parser.parse_args()
    rows = []
    if args.backend in ("postgres", "both"):
        print(f"PostgreSQL at {DSN.split('@')[-1]}, scale {args.scale}", flush=True)
        rows += run_postgres(args.scale)
        if args.w1_anatomy:
            pg_w1_anatomy(args.scale)
    if args.backend in ("sqlite", "both"):
        print(f"SQLite, synchronous={args.synchronous}, scale {args.scale}", flush=True)
        rows += run_sqlite(args.scale, args.synchronous.upper())
    print()
    report(rows)


if __name__ == "__main__":
    main()
