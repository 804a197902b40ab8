"""The write path users call, measured with the anchor bench's definitions (issue 15).

esctl is driven only through its public API, as an application would: per event a command
method builds the event through ``Aggregate.apply``, then ``Repository.save(aggregate)``
appends the aggregate's changes with its expected version. The raw baseline, measured in
the same run, inserts into a PLAIN table (the anchor bench's ``sys_raw_pg.py`` /
``sys_raw_sqlite.py`` table)::

    events(id bigserial|INTEGER PRIMARY KEY, aggregate_id uuid|TEXT, type, body jsonb|TEXT,
           version, created_at, UNIQUE (aggregate_id, version))

with no esctl index, and builds its body dict and JSON (``json.dumps``; psycopg's ``Jsonb``)
inside the timed region too. Event bodies are the anchor's ~100-byte JSON objects.

  W1  20,000 events over 1,000 aggregates, one event per ``Repository.save`` (one
      transaction, expected version); raw: one autocommit INSERT per event.
  W2  200,000 events, 100 per ``Repository.save`` for one aggregate (1,000 aggregates, two
      batches each); raw: PostgreSQL one prepared 100-row INSERT ... VALUES (autocommit: one
      transaction), SQLite BEGIN IMMEDIATE + executemany + COMMIT.
  W4  a writer saves 200 single events a second for 10 s (``Repository.save``, 100
      aggregates); a Processor in another process started by ``run_processor`` notes when
      each event reaches its handler (body decoded). Latency = arrival - the moment the
      writer's save returned, on the machine's monotonic clock; p50/p99 (also printed from
      the moment the save was called, the anchor bench's "from commit start").
      Raw: PostgreSQL INSERT + pg_notify in one statement, the child LISTENs and reads
      ``id > last``; SQLite (no push) the child polls ``id > last`` every 10 ms.
  bytes per event, after W2: PostgreSQL ``pg_total_relation_size`` of the events table
      (heap, TOAST and every index) / rows; SQLite the events table and its indexes from
      ``dbstat`` after ``wal_checkpoint(TRUNCATE)`` / rows (and the whole file,
      page_count * page_size / rows).

PostgreSQL: esctl on PostgreSQL against raw psycopg, in two fresh schemas of the database
named by ``ESCTL_TEST_POSTGRES_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/test``),
dropped at the end. SQLite FULL: esctl with its default durability (WAL, synchronous=FULL)
against raw sqlite3 with WAL + synchronous=FULL, in temporary files.

Every figure is printed beside its raw baseline from the same repetition and the ratio
esctl / raw (throughput: below 1 is slower than raw; latency and bytes: above 1 is slower /
bigger). Summaries are medians over repetitions, the ratio being the median of the
per-repetition ratios. The esctl/raw order alternates between repetitions.

    python bench/user_path.py                          # both backends, W1 W2 W4, 3 repetitions
    python bench/user_path.py --quick --reps 1         # smoke test: sizes / 10
    python bench/user_path.py --backend postgres --workloads W1,W2 --json
    python bench/user_path.py --profile [--quick]      # W2 esctl under cProfile, top 25
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import json
import multiprocessing as mp
import os
import pstats
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from esctl_lib import (
    Aggregate,
    Event,
    EventStore,
    Processor,
    Repository,
    Transaction,
    handles,
    open_store,
    run_processor,
)

DSN = os.environ.get("ESCTL_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
RAW_TYPE = "ItemHappened"
#: issue 15's goals (ratio to raw; W4 p99 in ms; bytes: eventsourcing's, per the issue).
GOALS = {
    ("postgres", "W1"): ">= 0.85", ("postgres", "W2"): ">= 0.75",
    ("sqlite", "W1"): ">= 0.8", ("sqlite", "W2"): ">= 0.5",
    ("postgres", "W4"): "p99 <= 1.5 ms",
    ("postgres", "bytes"): "<= 336 B", ("sqlite", "bytes"): "<= 293 B",
}
OUT = sys.stdout  # progress lines; stderr with --json


def say(text: str) -> None:
    print(text, file=OUT, flush=True)


def body(i: int) -> dict[str, Any]:
    """The anchor bench's event body: a JSON object of about 100 bytes."""
    return {"title": f"Item {i:08d} title", "n": i, "amount": 1234.56,
            "tags": ["red", "blue"], "ok": True}


class ItemHappened(Event, type_name="item_happened"):
    """Body: the ~100-byte anchor body."""


class Item(Aggregate):
    count = 0

    @handles(ItemHappened)
    def _happened(self, event: Event) -> None:
        self.count += 1

    def happen(self, **fields: Any) -> None:
        self.apply(ItemHappened(aggregate_id=self.id, body=fields))


@dataclass
class Sizes:
    n1: int = 20_000
    aggs1: int = 1_000
    n2: int = 200_000
    batch: int = 100
    aggs2: int = 1_000
    w4_rate: float = 200.0
    w4_secs: float = 10.0
    w4_aggs: int = 100

    def quick(self) -> Sizes:
        return Sizes(self.n1 // 10, self.aggs1 // 10, self.n2 // 10, self.batch,
                     self.aggs2 // 10, self.w4_rate, self.w4_secs / 10, self.w4_aggs)


# -- backends ------------------------------------------------------------------------------
PG_PLAIN_DDL = """CREATE TABLE events (id bigserial PRIMARY KEY, aggregate_id uuid NOT NULL,
 type text NOT NULL, body jsonb NOT NULL, version int NOT NULL,
 created_at timestamptz NOT NULL DEFAULT now(), UNIQUE (aggregate_id, version))"""
SQLITE_PLAIN_DDL = """CREATE TABLE events (id INTEGER PRIMARY KEY, aggregate_id TEXT NOT NULL,
 type TEXT NOT NULL, body TEXT NOT NULL, version INTEGER NOT NULL,
 created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
 UNIQUE (aggregate_id, version))"""
INSERT_PG = "INSERT INTO events (aggregate_id, type, body, version) VALUES (%s, %s, %s, %s)"
INSERT_SQLITE = "INSERT INTO events (aggregate_id, type, body, version) VALUES (?, ?, ?, ?)"


class Postgres:
    name = "postgres"

    def __init__(self) -> None:
        base = f"bench_userpath_{uuid.uuid4().hex[:8]}"
        self.esctl_schema, self.raw_schema = f"{base}_esctl", f"{base}_raw"

    def admin(self) -> Any:
        import psycopg

        return psycopg.connect(DSN, autocommit=True)

    def _drop(self, schema: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def location(self) -> tuple[str, str | None]:
        return DSN, self.esctl_schema

    def fresh_esctl(self) -> EventStore:
        self._drop(self.esctl_schema)
        store = open_store(DSN, schema=self.esctl_schema)
        store.setup()
        return store

    def fresh_raw(self) -> Any:
        import psycopg

        self._drop(self.raw_schema)
        with self.admin() as conn:
            conn.execute(f'CREATE SCHEMA "{self.raw_schema}"')
            conn.execute(f'SET search_path TO "{self.raw_schema}"')
            conn.execute(PG_PLAIN_DDL.encode())
        return psycopg.connect(DSN, autocommit=True,
                               options=f"-c search_path={self.raw_schema}")

    def raw_target(self) -> tuple[str, str]:
        return DSN, self.raw_schema

    def size(self, schema: str) -> dict[str, Any]:
        table = f'"{schema}".events'
        with self.admin() as conn:
            rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            total = conn.execute("SELECT pg_total_relation_size(%s::regclass)",
                                 (table,)).fetchone()[0]
            heap = conn.execute("SELECT pg_relation_size(%s::regclass)", (table,)).fetchone()[0]
            parts = {"heap": heap}
            for name, size in conn.execute(
                    "SELECT c.relname, pg_relation_size(c.oid) FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass "
                    "ORDER BY c.relname", (table,)).fetchall():
                parts[name] = size
            parts["toast+fsm+vm"] = total - sum(parts.values())
            everything = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r', 'm')", (schema,)).fetchone()[0]
        return {"rows": rows, "bytes": total, "per_event": total / rows if rows else 0.0,
                "parts_per_event": {k: v / rows for k, v in parts.items()} if rows else {},
                "all_tables_per_event": int(everything) / rows if rows else 0.0}

    def esctl_size(self) -> dict[str, Any]:
        return self.size(self.esctl_schema)

    def raw_size(self) -> dict[str, Any]:
        return self.size(self.raw_schema)

    def close(self) -> None:
        self._drop(self.esctl_schema)
        self._drop(self.raw_schema)


class Sqlite:
    name = "sqlite"

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="esctl-userpath-")
        self.esctl_path = os.path.join(self.dir, "esctl.sqlite")
        self.raw_path = os.path.join(self.dir, "raw.sqlite")

    @staticmethod
    def _remove(path: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path + suffix)

    def location(self) -> tuple[str, str | None]:
        return f"sqlite:///{self.esctl_path}", None

    def fresh_esctl(self) -> EventStore:
        self._remove(self.esctl_path)
        store = open_store(f"sqlite:///{self.esctl_path}")  # default durability: FULL
        store.setup()
        return store

    def fresh_raw(self) -> sqlite3.Connection:
        self._remove(self.raw_path)
        conn = raw_sqlite_connect(self.raw_path)
        conn.execute(SQLITE_PLAIN_DDL)
        return conn

    def raw_target(self) -> tuple[str, str]:
        return self.raw_path, ""

    @staticmethod
    def size(path: str) -> dict[str, Any]:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            rows = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            file_bytes = (conn.execute("PRAGMA page_count").fetchone()[0]
                          * conn.execute("PRAGMA page_size").fetchone()[0])
            names = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE tbl_name = 'events' "
                "AND type IN ('table', 'index')")]
            parts: dict[str, int] = {}
            try:
                for name, size in conn.execute(
                        "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY name"):
                    if name in names:
                        parts[name] = size
            except sqlite3.OperationalError:  # SQLite built without dbstat
                parts = {}
        finally:
            conn.close()
        table_bytes = sum(parts.values()) if parts else file_bytes
        return {"rows": rows, "bytes": table_bytes,
                "per_event": table_bytes / rows if rows else 0.0,
                "parts_per_event": {k: v / rows for k, v in parts.items()} if rows else {},
                "all_tables_per_event": file_bytes / rows if rows else 0.0}

    def esctl_size(self) -> dict[str, Any]:
        return self.size(self.esctl_path)

    def raw_size(self) -> dict[str, Any]:
        return self.size(self.raw_path)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


Backend = Postgres | Sqlite


def raw_sqlite_connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


# -- W1 / W2 -------------------------------------------------------------------------------
def timed(fn: Any) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def esctl_w1(backend: Backend, s: Sizes) -> float:
    store = backend.fresh_esctl()
    try:
        repo = Repository(store)
        aggs = [Item(uuid.uuid4()) for _ in range(s.aggs1)]
        store.latest_position()  # connect before the timer (raw connects first too)

        def run() -> None:
            for i in range(s.n1):
                a = aggs[i % s.aggs1]
                a.happen(**body(i))
                repo.save(a)  # one event, expected_version = version - 1

        seconds = timed(run)
        assert store.count() == s.n1
    finally:
        store.close()
    return s.n1 / seconds


def esctl_w2_loop(store: EventStore, s: Sizes) -> Any:
    repo = Repository(store)
    aggs = [Item(uuid.uuid4()) for _ in range(s.aggs2)]
    store.latest_position()

    def run() -> None:
        i = 0
        for b in range(s.n2 // s.batch):
            a = aggs[b % s.aggs2]
            for j in range(s.batch):
                a.happen(**body(i + j))
            repo.save(a)  # the batch's events: one append, one transaction
            i += s.batch

    return run


def esctl_w2(backend: Backend, s: Sizes) -> float:
    store = backend.fresh_esctl()
    try:
        seconds = timed(esctl_w2_loop(store, s))
        assert store.count() == s.n2 // s.batch * s.batch
    finally:
        store.close()
    return s.n2 / seconds


def raw_w1(backend: Backend, s: Sizes) -> float:
    conn = backend.fresh_raw()
    versions = [0] * s.aggs1
    try:
        if backend.name == "postgres":
            from psycopg.types.json import Jsonb

            ids: list[Any] = [uuid.uuid4() for _ in range(s.aggs1)]
            cur = conn.cursor()

            def run() -> None:
                for i in range(s.n1):
                    k = i % s.aggs1
                    v = versions[k] + 1
                    cur.execute(INSERT_PG, (ids[k], RAW_TYPE, Jsonb(body(i)), v))
                    versions[k] = v
        else:
            ids = [str(uuid.uuid4()) for _ in range(s.aggs1)]

            def run() -> None:
                for i in range(s.n1):
                    k = i % s.aggs1
                    v = versions[k] + 1
                    conn.execute(INSERT_SQLITE, (ids[k], RAW_TYPE, json.dumps(body(i)), v))
                    versions[k] = v

        seconds = timed(run)
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == s.n1
    finally:
        conn.close()
    return s.n1 / seconds


def raw_w2(backend: Backend, s: Sizes) -> float:
    conn = backend.fresh_raw()
    versions = [0] * s.aggs2
    nbatches = s.n2 // s.batch
    try:
        if backend.name == "postgres":
            from psycopg.types.json import Jsonb

            ids: list[Any] = [uuid.uuid4() for _ in range(s.aggs2)]
            sql = ("INSERT INTO events (aggregate_id, type, body, version) VALUES "
                   + ",".join(["(%s,%s,%s,%s)"] * s.batch))
            cur = conn.cursor()

            def run() -> None:
                i = 0
                for b in range(nbatches):
                    k = b % s.aggs2
                    v0 = versions[k]
                    params: list[Any] = []
                    for j in range(s.batch):
                        params += (ids[k], RAW_TYPE, Jsonb(body(i + j)), v0 + 1 + j)
                    cur.execute(sql, params, prepare=True)  # autocommit: one transaction
                    versions[k] = v0 + s.batch
                    i += s.batch
        else:
            ids = [str(uuid.uuid4()) for _ in range(s.aggs2)]

            def run() -> None:
                i = 0
                for b in range(nbatches):
                    k = b % s.aggs2
                    v0 = versions[k]
                    conn.execute("BEGIN IMMEDIATE")
                    conn.executemany(INSERT_SQLITE, [
                        (ids[k], RAW_TYPE, json.dumps(body(i + j)), v0 + 1 + j)
                        for j in range(s.batch)])
                    conn.execute("COMMIT")
                    versions[k] = v0 + s.batch
                    i += s.batch

        seconds = timed(run)
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == nbatches * s.batch
    finally:
        conn.close()
    return s.n2 / seconds


# -- W4 ------------------------------------------------------------------------------------
class Probe(Processor):
    """Notes when each event reaches its handler (body decoded)."""

    name = "userpath_w4_probe"

    def __init__(self, on_receive: Any = None) -> None:
        self.on_receive = on_receive

    @handles(ItemHappened)
    def _happened(self, event: Event, tx: Transaction) -> None:
        self.on_receive(event.body["n"])


def esctl_child(url: str, schema: str | None, ready: Any, stop: Any, on_receive: Any) -> None:
    store = open_store(url, schema=schema)
    local_stop = threading.Event()
    threading.Thread(target=lambda: (stop.wait(), local_stop.set()), daemon=True).start()
    store.reset_tracker(Probe.name, store.latest_position())

    def on_state(state: str, position: int, error: Any) -> None:
        if state == "idle" and not ready.is_set():
            ready.set()

    try:
        run_processor(Probe(on_receive), store, stop=local_stop, on_state=on_state,
                      idle_timeout=0.5)
    finally:
        store.close()


def raw_pg_child(dsn: str, schema: str, ready: Any, stop: Any, on_receive: Any) -> None:
    import psycopg

    select = "SELECT id, body FROM events WHERE id > %s ORDER BY id LIMIT %s"
    with psycopg.connect(dsn, autocommit=True, options=f"-c search_path={schema}") as conn:
        conn.execute("LISTEN events")
        pos = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        cur = conn.cursor()
        ready.set()
        while not stop.is_set():
            if not list(conn.notifies(timeout=0.1, stop_after=1)):
                continue
            while True:
                rows = cur.execute(select, (pos, 1000), prepare=True).fetchall()
                for r in rows:
                    on_receive(r[1]["n"])
                if rows:
                    pos = rows[-1][0]
                if len(rows) < 1000:
                    break


def raw_sqlite_child(path: str, _: str, ready: Any, stop: Any, on_receive: Any) -> None:
    conn = raw_sqlite_connect(path)
    pos = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
    ready.set()
    while not stop.is_set():
        rows = conn.execute("SELECT id, body FROM events WHERE id > ? ORDER BY id LIMIT 1000",
                            (pos,)).fetchall()
        for r in rows:
            on_receive(json.loads(r[1])["n"])
        if rows:
            pos = rows[-1][0]
        if len(rows) < 1000:
            time.sleep(0.010)
    conn.close()


def _child_entry(target: Any, args: tuple[Any, ...], ready: Any, stop: Any, count: Any,
                 out: Any) -> None:
    received: dict[int, float] = {}

    def on_receive(n: int) -> None:
        received[n] = time.monotonic()
        with count.get_lock():
            count.value += 1

    try:
        target(*args, ready=ready, stop=stop, on_receive=on_receive)
        out.put(("ok", received))
    except BaseException as exc:  # report to the parent, whatever it is
        out.put(("error", repr(exc)))
        ready.set()


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, as the anchor bench)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def run_w4(append: Any, child: Any, child_args: tuple[Any, ...], s: Sizes) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready, stop, count, out = ctx.Event(), ctx.Event(), ctx.Value("i", 0), ctx.Queue()
    proc = ctx.Process(target=_child_entry, args=(child, child_args, ready, stop, count, out))
    proc.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("W4 child did not become ready")
        if not out.empty():
            raise RuntimeError(f"W4 child failed: {out.get()[1]}")
        time.sleep(0.3)
        total = int(s.w4_rate * s.w4_secs)
        commits: dict[int, float] = {}
        began: dict[int, float] = {}  # when each save was called (the anchor's "commit start")
        start = time.monotonic()
        late = 0
        for i in range(total):
            delay = start + i / s.w4_rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                late += 1
            began[i] = time.monotonic()
            append(i)
            commits[i] = time.monotonic()
        deadline = time.monotonic() + 5.0
        while count.value < total and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        stop.set()
        status, payload = out.get(timeout=60)
        if status != "ok":
            raise RuntimeError(f"W4 child failed: {payload}")
    finally:
        stop.set()
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
    lat = [(payload[i] - t) * 1000.0 for i, t in commits.items() if i in payload]
    from_start = [(payload[i] - t) * 1000.0 for i, t in began.items() if i in payload]
    return {"p50": percentile(lat, 50), "p99": percentile(lat, 99),
            "p50_from_start": percentile(from_start, 50),
            "p99_from_start": percentile(from_start, 99),
            "max": max(lat) if lat else float("nan"), "received": len(lat), "written": total,
            "late_sends": late}


def esctl_w4(backend: Backend, s: Sizes) -> dict[str, Any]:
    store = backend.fresh_esctl()
    repo = Repository(store)
    aggs = [Item(uuid.uuid4()) for _ in range(s.w4_aggs)]
    store.latest_position()

    def append(i: int) -> None:
        a = aggs[i % s.w4_aggs]
        a.happen(**body(i))
        repo.save(a)

    try:
        return run_w4(append, esctl_child, backend.location(), s)
    finally:
        store.close()


def raw_w4(backend: Backend, s: Sizes) -> dict[str, Any]:
    conn = backend.fresh_raw()
    versions = [0] * s.w4_aggs
    if backend.name == "postgres":
        from psycopg.types.json import Jsonb

        pg_ids = [uuid.uuid4() for _ in range(s.w4_aggs)]
        cur = conn.cursor()
        sql = ("WITH ins AS (INSERT INTO events (aggregate_id, type, body, version) "
               "VALUES (%s, %s, %s, %s) RETURNING id) "
               "SELECT pg_notify('events', id::text) FROM ins")

        def append(i: int) -> None:
            k = i % s.w4_aggs
            versions[k] += 1
            cur.execute(sql, (pg_ids[k], RAW_TYPE, Jsonb(body(i)), versions[k]))

        child: Any = raw_pg_child
    else:
        sq_ids = [str(uuid.uuid4()) for _ in range(s.w4_aggs)]

        def append(i: int) -> None:
            k = i % s.w4_aggs
            versions[k] += 1
            conn.execute(INSERT_SQLITE, (sq_ids[k], RAW_TYPE, json.dumps(body(i)), versions[k]))

        child = raw_sqlite_child
    try:
        return run_w4(append, child, backend.raw_target(), s)
    finally:
        conn.close()


# -- driver --------------------------------------------------------------------------------
def pair(rep: int, esctl: Any, raw: Any) -> tuple[Any, Any]:
    """Run both sides, esctl first on odd repetitions and raw first on even ones."""
    if rep % 2:
        mine = esctl()
        return mine, raw()
    base = raw()
    return esctl(), base


def measure(backend: Backend, rep: int, s: Sizes, workloads: list[str]) -> dict[str, Any]:
    run: dict[str, Any] = {"rep": rep, "backend": backend.name,
                           "order": "esctl first" if rep % 2 else "raw first"}
    if "W1" in workloads:
        mine, base = pair(rep, lambda: esctl_w1(backend, s), lambda: raw_w1(backend, s))
        run["W1"] = {"esctl": mine, "raw": base, "ratio": mine / base}
        say(f"  [rep {rep} {backend.name}] W1 esctl {mine:9,.0f} ev/s  raw {base:9,.0f} ev/s"
            f"  x{mine / base:.2f}")
    if "W2" in workloads:
        mine, base = pair(rep, lambda: esctl_w2(backend, s), lambda: raw_w2(backend, s))
        run["W2"] = {"esctl": mine, "raw": base, "ratio": mine / base}
        say(f"  [rep {rep} {backend.name}] W2 esctl {mine:9,.0f} ev/s  raw {base:9,.0f} ev/s"
            f"  x{mine / base:.2f}")
        me, rb = backend.esctl_size(), backend.raw_size()
        run["bytes"] = {"esctl": me["per_event"], "raw": rb["per_event"],
                        "ratio": me["per_event"] / rb["per_event"],
                        "esctl_detail": me, "raw_detail": rb}
        say(f"  [rep {rep} {backend.name}] bytes/event esctl {me['per_event']:.0f}  "
            f"raw {rb['per_event']:.0f}  x{me['per_event'] / rb['per_event']:.2f}  "
            f"(all tables: esctl {me['all_tables_per_event']:.0f}, raw "
            f"{rb['all_tables_per_event']:.0f}; esctl: "
            + ", ".join(f"{k} {v:.0f}" for k, v in me["parts_per_event"].items())
            + "; raw: " + ", ".join(f"{k} {v:.0f}" for k, v in rb["parts_per_event"].items())
            + ")")
    if "W4" in workloads:
        mine, base = pair(rep, lambda: esctl_w4(backend, s), lambda: raw_w4(backend, s))
        run["W4"] = {"esctl": mine, "raw": base, "ratio": mine["p99"] / base["p99"]}
        how = "LISTEN/NOTIFY" if backend.name == "postgres" else "10 ms poll"
        say(f"  [rep {rep} {backend.name}] W4 esctl p50 {mine['p50']:.2f} ms p99 "
            f"{mine['p99']:.2f} ms ({mine['received']}/{mine['written']})  raw ({how}) p50 "
            f"{base['p50']:.2f} ms p99 {base['p99']:.2f} ms ({base['received']}/"
            f"{base['written']})  p99 x{mine['p99'] / base['p99']:.2f}; from the call of the "
            f"save: esctl {mine['p50_from_start']:.2f} / {mine['p99_from_start']:.2f} ms, raw "
            f"{base['p50_from_start']:.2f} / {base['p99_from_start']:.2f} ms")
    return run


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name in ("postgres", "sqlite"):
        mine = [r for r in runs if r["backend"] == name]
        for key in ("W1", "W2", "W4", "bytes"):
            cells = [r[key] for r in mine if key in r]
            if not cells:
                continue
            if key == "W4":
                esctl = statistics.median(c["esctl"]["p99"] for c in cells)
                raw = statistics.median(c["raw"]["p99"] for c in cells)
                extra = {"esctl_p50": statistics.median(c["esctl"]["p50"] for c in cells),
                         "raw_p50": statistics.median(c["raw"]["p50"] for c in cells)}
            else:
                esctl = statistics.median(c["esctl"] for c in cells)
                raw = statistics.median(c["raw"] for c in cells)
                extra = {}
            rows.append({"backend": name, "workload": key, "esctl": esctl, "raw": raw,
                         "ratio": statistics.median(c["ratio"] for c in cells),
                         # best of the repetitions (the machine is shared: the least
                         # disturbed one); throughput: highest, latency and bytes: lowest
                         "best": (max if key in ("W1", "W2") else min)(
                             c["ratio"] for c in cells),
                         "ratios": [c["ratio"] for c in cells],
                         "goal": GOALS.get((name, key), ""), **extra})
    return rows


def print_summary(rows: list[dict[str, Any]], reps: int) -> None:
    units = {"W1": "ev/s", "W2": "ev/s", "W4": "ms p99", "bytes": "B/event"}
    say(f"\nmedians over {reps} repetition(s); ratio = esctl / raw (median of the per-rep ratios);"
        " best = the best repetition (a shared machine: the least disturbed one)")
    say(f"{'backend':9} {'workload':8} {'esctl':>10} {'raw':>10} {'unit':8} {'ratio':>6}"
        f" {'best':>6}  {'per rep':18} goal (issue 15)")
    for r in rows:
        fmt = "{:10,.0f}" if r["workload"] in ("W1", "W2", "bytes") else "{:10.2f}"
        per_rep = " ".join(f"{x:.2f}" for x in r["ratios"])
        say(f"{r['backend']:9} {r['workload']:8} {fmt.format(r['esctl'])} "
            f"{fmt.format(r['raw'])} {units[r['workload']]:8} {r['ratio']:6.2f} "
            f"{r['best']:6.2f}  "
            f"{per_rep:18} {r['goal']}")


def short_path(path: str) -> str:
    for marker in ("site-packages/", "/esctl_lib/", "/lib/python"):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return ("esctl_lib/" + tail) if marker == "/esctl_lib/" else tail
    return os.path.basename(path)


def profile(backend: Backend, s: Sizes, top: int = 25) -> dict[str, Any]:
    store = backend.fresh_esctl()
    try:
        run = esctl_w2_loop(store, s)
        prof = cProfile.Profile()
        gc.collect()
        start = time.perf_counter()
        prof.enable()
        run()
        prof.disable()
        seconds = time.perf_counter() - start
    finally:
        store.close()
    stats = pstats.Stats(prof)
    entries = []
    for (path, line, func), (_cc, ncalls, tottime, cumtime, _callers) in \
            stats.stats.items():  # type: ignore[attr-defined]
        where = f"{short_path(path)}:{line}({func})" if line else func
        entries.append({"where": where, "ncalls": ncalls, "tottime": tottime,
                        "cumtime": cumtime})
    events = s.n2 // s.batch * s.batch
    out: dict[str, Any] = {"backend": backend.name, "events": events, "seconds": seconds}
    say(f"\n== W2 esctl under cProfile, {backend.name}: {events:,} events in {seconds:.2f} s "
        f"(profiled, {events / seconds:,.0f} ev/s; the profiler slows Python code, not I/O)")
    for key, title in (("cumtime", "cumulative"), ("tottime", "own time")):
        ranked = sorted(entries, key=lambda e: e[key], reverse=True)[:top]
        out[key] = ranked
        say(f"-- top {top} by {title}: ncalls, own s, cumulative s, cumulative us/event")
        for e in ranked:
            say(f"  {e['ncalls']:>9} {e['tottime']:8.3f} {e['cumtime']:8.3f} "
                f"{e['cumtime'] / events * 1e6:8.2f}  {e['where']}")
    return out


def main() -> None:
    global OUT
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--workloads", default="W1,W2,W4",
                        help="comma list of W1, W2 (with bytes per event), W4")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="sizes divided by 10 (smoke test)")
    parser.add_argument("--json", action="store_true",
                        help="JSON document on stdout (progress lines go to stderr)")
    parser.add_argument("--profile", action="store_true",
                        help="only run W2 esctl under cProfile and print the top 25 functions")
    args = parser.parse_args()
    if args.json:
        OUT = sys.stderr
    s = Sizes().quick() if args.quick else Sizes()
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = set(workloads) - {"W1", "W2", "W4"}
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    names = ["postgres", "sqlite"] if args.backend == "both" else [args.backend]
    doc: dict[str, Any] = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "load_before": os.getloadavg(), "sizes": asdict(s),
                           "quick": args.quick, "reps": args.reps, "workloads": workloads,
                           "sqlite_version": sqlite3.sqlite_version}
    say(f"user path bench {doc['date']}, load {doc['load_before'][0]:.2f}, sizes {asdict(s)}")
    backends: list[Backend] = [Postgres() if n == "postgres" else Sqlite() for n in names]
    try:
        if args.profile:
            doc["profile"] = [profile(b, s) for b in backends]
        else:
            runs = []
            for rep in range(1, args.reps + 1):
                for b in backends:
                    runs.append(measure(b, rep, s, workloads))
            doc["runs"] = runs
            doc["summary"] = summarise(runs)
            print_summary(doc["summary"], args.reps)
    finally:
        for b in backends:
            b.close()
    doc["load_after"] = os.getloadavg()
    say(f"load {doc['load_after'][0]:.2f} at the end")
    if args.json:
        print(json.dumps(doc, indent=1, default=str))


if __name__ == "__main__":
    main()
