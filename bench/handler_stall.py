"""Issue 13: does a slow handler stall other writers?

A processor whose handler sleeps (2 s by default: an e-mail being sent, say) runs in a
thread through the public API (``run_processor``). Meanwhile another store handle (its own
connection) plays the application: it appends one event every 20 ms for the length of the
sleep and times each ``append`` (SQLite, memory: the write lock) and, on PostgreSQL, how
long after its commit the event becomes readable in the stream (``is_readable``: the
reader horizon). The baseline, in the same run, is the same appends with no processor
running. The cases: a reactor (sleeps, then emits); a reactor shaped like the todo
notifier (looks up a row, sleeps, writes a row, emits, for each event: the second event's
lookup finds the first one's write pending); a projector (writes a row with a raw
``execute`` for one event, then sleeps in the next event's handler).

Targets: on SQLite an append waits <= 50 ms while a handler sleeps; on PostgreSQL the p99
commit -> visible latency stays <= 50 ms (with the horizon helper's work too).

    python bench/handler_stall.py [--backend sqlite|postgres|memory|all] [--sleep 2]
                                  [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from esctl_lib import Event, EventStore, handles, open_store
from esctl_lib.processing import (
    BatchTransaction,
    NoRetry,
    Processor,
    Projector,
    Reactor,
    is_readable,
    run_processor,
)

DSN = os.environ.get("ESCTL_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
TARGET_MS = 50.0
INTERVAL = 0.02


class StallWork(Event, type_name="bench_stall_work"):
    pass


class StallDone(Event, type_name="bench_stall_done"):
    pass


class StallApp(Event, type_name="bench_stall_app"):
    pass


class Sleeper:
    """Sleeps in the handler of the second event; says when it starts."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.sleeping = threading.Event()

    def maybe_sleep(self, n: int) -> None:
        if n == 1:
            self.sleeping.set()
            time.sleep(self.seconds)


class SlowReactor(Reactor):
    name = "bench_stall_reactor"
    emits = (StallDone,)

    def __init__(self, sleeper: Sleeper) -> None:
        self.sleeper = sleeper

    @handles(StallWork)
    def _work(self, event: Event, tx: BatchTransaction) -> None:
        self.sleeper.maybe_sleep(int(event.body["n"]))
        self.emit(StallDone(aggregate_id=event.aggregate_id))


class SlowLookupReactor(Reactor):
    """The todo notifier's shape: look up, send (sleep), write, emit; for each event."""

    name = "bench_stall_lookup_reactor"
    emits = (StallDone,)
    tables = {"bench_stall_sent": "CREATE TABLE IF NOT EXISTS bench_stall_sent "
                                  "(n INTEGER PRIMARY KEY)"}

    def __init__(self, sleeper: Sleeper) -> None:
        self.sleeper = sleeper

    @handles(StallWork)
    def _work(self, event: Event, tx: BatchTransaction) -> None:
        n = int(event.body["n"])
        tx.select("bench_stall_sent", where={"n": n})
        self.sleeper.maybe_sleep(n)
        tx.upsert("bench_stall_sent", {"n": n}, key=("n",))
        self.emit(StallDone(aggregate_id=event.aggregate_id))


class SlowProjector(Projector):
    name = "bench_stall_projector"
    tables = {"bench_stall_rows": "CREATE TABLE IF NOT EXISTS bench_stall_rows "
                                  "(n INTEGER PRIMARY KEY)"}

    def __init__(self, sleeper: Sleeper) -> None:
        self.sleeper = sleeper

    @handles(StallWork)
    def _work(self, event: Event, tx: BatchTransaction) -> None:
        # A raw statement: before issue 13 it ran at once, so the batch held a write lock
        # (SQLite) or a transaction id (PostgreSQL) while the next handler slept.
        p = tx.placeholder
        tx.execute(f"INSERT INTO bench_stall_rows (n) VALUES ({p})", (event.id,))
        self.sleeper.maybe_sleep(int(event.body["n"]))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def application(store: EventStore, seconds: float, visible: bool) -> tuple[list[float],
                                                                            list[float]]:
    """Append for ``seconds``; (append wait ms, commit -> visible ms) per event."""
    waits: list[float] = []
    lags: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        stored = store.append([StallApp(aggregate_id=str(uuid.uuid4()))])
        committed = time.perf_counter()
        waits.append((committed - started) * 1000)
        if visible:
            while not is_readable(store, stored[0].id or 0):
                time.sleep(0.0005)
            lags.append((time.perf_counter() - committed) * 1000)
        time.sleep(INTERVAL)
    return waits, lags


def measure(store: EventStore, app: EventStore, make: Callable[[Sleeper], Processor] | None,
            seconds: float, visible: bool) -> tuple[list[float], list[float]]:
    if make is None:
        return application(app, seconds * 0.8, visible)
    sleeper = Sleeper(seconds)
    processor = make(sleeper)
    work = str(uuid.uuid4())
    store.append([StallWork(aggregate_id=work, body={"n": n}) for n in range(3)])
    stop = threading.Event()
    thread = threading.Thread(target=run_processor, args=(processor, store), daemon=True,
                              kwargs={"stop": stop, "once": True, "retry": NoRetry()})
    thread.start()
    if not sleeper.sleeping.wait(60):
        raise SystemExit("the handler never started sleeping")
    try:
        return application(app, seconds * 0.8, visible)  # within the sleep
    finally:
        thread.join(120)
        with store.transaction() as tx:
            tx.reset_tracker(processor.name, store.latest_position())


CASES: list[tuple[str, Callable[[Sleeper], Processor] | None]] = [
    ("baseline: no processor", None),
    ("reactor handler sleeping", SlowReactor),
    ("lookup/send/write reactor", SlowLookupReactor),
    ("projector handler sleeping", SlowProjector),
]


@contextmanager
def stores(backend: str) -> Iterator[tuple[EventStore, EventStore]]:
    if backend == "memory":
        store = open_store("memory://")
        store.setup()
        yield store, store
        return
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'events.db'}"
            store = open_store(url)
            store.setup()
            app = open_store(url)
            try:
                yield store, app
            finally:
                app.close()
                store.close()
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    store = open_store(DSN, schema=schema)
    store.setup()
    app = open_store(DSN, schema=schema)
    try:
        yield store, app
    finally:
        app.close()
        store.close()
        import psycopg

        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def bench(backend: str, seconds: float, rounds: int) -> None:
    visible = backend == "postgres"
    metric = "commit -> visible" if visible else "append wait"
    print(f"\n{backend}: {metric}, ms (best of {rounds} rounds by max; handler sleeps "
          f"{seconds:g} s; target <= {TARGET_MS:g} ms)")
    print(f"{'case':30} {'n':>4} {'p50':>8} {'p99':>8} {'max':>8}   append p99")
    with stores(backend) as (store, app):
        app.append([StallApp(aggregate_id=str(uuid.uuid4()))])  # warm the connections
        for label, make in CASES:
            best: tuple[list[float], list[float]] | None = None
            for _ in range(rounds):
                waits, lags = measure(store, app, make, seconds, visible)
                figures = lags if visible else waits
                if best is None or max(figures) < max(best[1] if visible else best[0]):
                    best = (waits, lags)
            assert best is not None
            waits, lags = best
            figures = lags if visible else waits
            print(f"{label:30} {len(figures):4d} {statistics.median(figures):8.2f} "
                  f"{pct(figures, 0.99):8.2f} {max(figures):8.2f}   {pct(waits, 0.99):8.2f}")


def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "memory", "all"],
                        default="all")
    parser.add_argument("--sleep", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    for backend in ("sqlite", "memory", "postgres"):
        if args.backend in (backend, "all"):
            bench(backend, args.sleep, args.rounds)


if __name__ == "__main__":
    main()
