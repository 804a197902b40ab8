"""Reader stall on PostgreSQL: commit -> visible latency of a writer's events while other
transactions sit open (``esctl_lib/stores/postgres/horizon.py``).

A writer appends one event every ``--interval`` ms for ``--seconds`` s per scenario; a
follower (another store in the same process, woken by NOTIFY) reads with ``read_page`` and
``wait``. Latency = when the follower first reads an event - when its ``append`` returned.
Each scenario runs under the new horizon and under the old rule (read below
``pg_snapshot_xmin`` only: the bound refresh switched off), in the same run:

  none  nothing else open (the baseline)
  (a)   a session idle in transaction, holding an id, in another database
  (b)   a session in this database that wrote only its own table, idle in transaction
  (c)   a projector-like transaction: writes read-model rows, stays open 2 s, again and again
  (d')  a transaction that holds the append lock and has written, open 2 s, again and again:
        what still holds readers back (by design: it may still insert events)

A reactor handler sleeping 2 s inside its batch (the issue's (d)) is (d') today; moving
handlers out of write transactions is measured by ``bench/handler_stall.py``.
Target: p99 <= 50 ms for (a), (b), (c) with the new horizon.

    python bench/reader_stall.py [--seconds 5] [--interval 10]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import sql

from esctl_lib import Event
from esctl_lib.stores.postgres import PostgresStore
from esctl_lib.stores.postgres.horizon import HorizonState

DSN = os.environ.get("ESCTL_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
OTHER_DB = "test_horizon_other"
TARGET_MS = 50.0


def other_dsn() -> str:
    with psycopg.connect(DSN, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                             (OTHER_DB,)).fetchone():
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(OTHER_DB)))
    return DSN.rsplit("/", 1)[0] + "/" + OTHER_DB


@contextlib.contextmanager
def idle_elsewhere(schema: str, stop: threading.Event) -> Iterator[None]:
    with psycopg.connect(other_dsn()) as conn:
        conn.execute("SELECT pg_current_xact_id()")
        yield
        conn.rollback()


@contextlib.contextmanager
def own_table_here(schema: str, stop: threading.Event) -> Iterator[None]:
    with psycopg.connect(DSN) as conn:
        conn.execute("CREATE TEMPORARY TABLE mine (n int)")
        conn.execute("INSERT INTO mine VALUES (1)")
        yield
        conn.rollback()


def _repeating(body: Callable[[PostgresStore, threading.Event], None]) -> Any:
    @contextlib.contextmanager
    def scenario(schema: str, stop: threading.Event) -> Iterator[None]:
        store = PostgresStore(DSN, schema=schema, application_name="bench blocker")

        def loop() -> None:
            while not stop.is_set():
                body(store, stop)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            store.close()
    return scenario


def _projector(store: PostgresStore, stop: threading.Event) -> None:
    with store.transaction() as tx:
        tx.execute("INSERT INTO bench_read_model VALUES (1)")
        stop.wait(2.0)


def _appender(store: PostgresStore, stop: threading.Event) -> None:
    with store.transaction() as tx:
        tx.will_append()
        tx.execute("INSERT INTO bench_read_model VALUES (1)")
        stop.wait(2.0)


SCENARIOS: dict[str, Any] = {
    "none": None,
    "(a) idle in another database": idle_elsewhere,
    "(b) wrote its own table here": own_table_here,
    "(c) projector batch open 2 s": _repeating(_projector),
    "(d') append lock held 2 s": _repeating(_appender),
}


def measure(schema: str, scenario: Any, seconds: float, interval: float) -> list[float]:
    writer = PostgresStore(DSN, schema=schema, application_name="bench writer")
    follower = PostgresStore(DSN, schema=schema, own_writes_wait=0.0,
                             application_name="bench follower")
    committed: dict[str, float] = {}
    latencies: list[float] = []
    stop, writing_done = threading.Event(), threading.Event()
    start = follower.latest_position()

    def follow() -> None:
        position = start
        while True:
            page = follower.read_page(position)
            now = time.monotonic()
            for e in page.events:
                latencies.append(now - committed[e.uuid])
            position = page.end
            if writing_done.is_set() and len(latencies) == len(committed):
                return
            if not page.events:
                follower.wait(position, timeout=0.05)

    reader = threading.Thread(target=follow, daemon=True)
    context = scenario(schema, stop) if scenario else contextlib.nullcontext()
    with context:
        time.sleep(0.2)  # the blocker is in place
        reader.start()
        agg, version = str(uuid.uuid4()), 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            e = Event(aggregate_id=agg, type="bench_stall", body={"n": version})
            # note the time first: the follower may read it before append returns
            committed[e.uuid] = time.monotonic()
            writer.append([e], expected_version=version)
            committed[e.uuid] = time.monotonic()
            version += 1
            time.sleep(interval / 1000)
        writing_done.set()
        reader.join(timeout=3 if scenario else 30)
        stop.set()
    reader.join(timeout=30)  # under the old rule (a)/(b) end only when the blocker ends
    writer.close()
    follower.close()
    return latencies


def report(name: str, rule: str, lat: list[float]) -> None:
    ms = sorted(x * 1000 for x in lat)
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    mark = "" if rule == "old" or not name.startswith(("(a)", "(b)", "(c)")) else (
        "  ok" if p99 <= TARGET_MS else f"  ABOVE {TARGET_MS:g} ms")
    print(f"{name:32s} {rule:4s} n={len(ms):4d}  p50 {p50:8.1f} ms  p99 {p99:8.1f} ms  "
          f"max {ms[-1]:8.1f} ms{mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--interval", type=float, default=10.0, help="ms between appends")
    args = parser.parse_args()
    schema = f"bench_stall_{uuid.uuid4().hex[:8]}"
    setup = PostgresStore(DSN, schema=schema)
    setup.setup()
    with setup.transaction() as tx:
        tx.execute("CREATE TABLE bench_read_model (n int)")
    setup.close()
    refresh = HorizonState.refresh
    try:
        for name, scenario in SCENARIOS.items():
            for rule in ("new", "old"):
                if rule == "old":  # the old rule: never look past pg_snapshot_xmin
                    HorizonState.refresh = lambda self, conn, key: False  # type: ignore[method-assign]
                else:
                    HorizonState.refresh = refresh  # type: ignore[method-assign]
                report(name, rule, measure(schema, scenario, args.seconds, args.interval))
    finally:
        HorizonState.refresh = refresh  # type: ignore[method-assign]
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    main()
