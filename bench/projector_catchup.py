"""W3b: a projector catching up over 200,000 events, against a raw driver loop, same run.

One counter upsert per event, the tracker saved in the same transaction per page of 1,000.
The esctl side goes through the public API (a ``Projector`` run by ``process_available``);
the raw side does by hand what a careful programmer would: per page SELECT, executemany
UPSERT, UPDATE tracker, COMMIT (sqlite3 with the store's pragmas; psycopg on one
connection). Ratio = raw time / esctl time (above 1: esctl is faster).
Targets: >= 1.2 on PostgreSQL, >= 0.7 on SQLite.

``--runner`` measures the shared read instead (issue 14 part 2): the wall time for 4
projectors to catch up under the runner (``esctl run``'s ``Runner``: spawned children,
start-up included) against 1 projector under the same runner, in the same run; and, as a
second baseline, the 4 with ``shared_reads = false`` (a child each, as before).
Target: 4 shared <= 1.3x the wall time of 1.

    python bench/projector_catchup.py [--backend sqlite|postgres|both] [--events 200000]
    python bench/projector_catchup.py --runner [--events 300000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from catchup_app import COUNTERS, PAGE, UPSERT, BenchCounted

from esctl_lib import Event, EventStore, handles, open_store
from esctl_lib.processing import BatchTransaction, Projector, process_available

TARGETS = {"sqlite": 0.7, "postgres": 1.2}
KEYS = 1000
DSN = os.environ.get("ESCTL_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
COLUMNS = ("id, uuid, aggregate_id, type, body, version, created_at, correlation_id, "
           "causation_id, metadata")


class Counter(Projector):
    """One counter upsert per event, keyed by aggregate."""

    name = "bench_counter"
    batch_size = PAGE
    tables = {"bench_counts": "CREATE TABLE IF NOT EXISTS bench_counts "
                              "(k TEXT PRIMARY KEY, n BIGINT NOT NULL)"}

    sql = {"?": UPSERT.format(p="?"), "%s": UPSERT.format(p="%s")}

    @handles(BenchCounted)
    def _counted(self, event: Event, tx: BatchTransaction) -> None:
        tx.defer(self.sql[tx.placeholder], (event.aggregate_id,))


def fill(store: EventStore, events: int) -> None:
    aggregates = [str(uuid.uuid4()) for _ in range(KEYS)]
    per = events // KEYS
    for agg in aggregates:
        store.append([BenchCounted(aggregate_id=agg, body={"amount": i}) for i in range(per)])


def reset(store: EventStore) -> None:
    with store.transaction() as tx:
        tx.execute("DROP TABLE IF EXISTS bench_counts")
        tx.execute(Counter.tables["bench_counts"])  # type: ignore[arg-type]
        tx.reset_tracker(Counter.name, 0)


def check(store: EventStore, events: int) -> None:
    with store.transaction() as tx:
        row = tx.fetchone("SELECT count(*), sum(n) FROM bench_counts")
    assert row is not None and int(row[0]) == KEYS and int(row[1]) == events, row


def run_esctl(store: EventStore, events: int) -> float:
    reset(store)
    start = time.perf_counter()
    handled = process_available(Counter(), store)
    elapsed = time.perf_counter() - start
    assert handled == events, handled
    check(store, events)
    return elapsed


def raw_sqlite(path: Path) -> Callable[[], int]:
    def loop() -> int:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        upsert = UPSERT.format(p="?")
        position = done = 0
        while True:
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM events WHERE id > ? ORDER BY id LIMIT ?",
                (position, PAGE),
            ).fetchall()
            if not rows:
                conn.execute("COMMIT")
                break
            conn.executemany(upsert, [(r[2],) for r in rows])
            position = rows[-1][0]
            conn.execute("UPDATE trackers SET position = ? WHERE name = ?",
                         (position, Counter.name))
            conn.execute("COMMIT")
            done += len(rows)
        conn.close()
        return done

    return loop


def raw_postgres(schema: str) -> Callable[[], int]:
    import psycopg

    def loop() -> int:
        with psycopg.connect(DSN) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            conn.commit()
            upsert = UPSERT.format(p="%s")
            position = done = 0
            while True:
                with conn.transaction():
                    rows = conn.execute(
                        f"SELECT {COLUMNS} FROM events WHERE id > %s ORDER BY id LIMIT %s",
                        (position, PAGE),
                    ).fetchall()
                    if not rows:
                        break
                    conn.cursor().executemany(upsert, [(str(r[2]),) for r in rows])
                    position = rows[-1][0]
                    conn.execute("UPDATE trackers SET position = %s WHERE name = %s",
                                 (position, Counter.name))
                done += len(rows)
        return done

    return loop


def run_raw(store: EventStore, loop: Callable[[], int], events: int) -> float:
    reset(store)
    start = time.perf_counter()
    done = loop()
    elapsed = time.perf_counter() - start
    assert done == events, done
    check(store, events)
    return elapsed


def measure(name: str, store: EventStore, loop: Callable[[], int], events: int,
            rounds: int) -> None:
    raw: list[float] = []
    ours: list[float] = []
    for _ in range(rounds):
        raw.append(run_raw(store, loop, events))
        ours.append(run_esctl(store, events))
    r, o = statistics.median(raw), statistics.median(ours)
    ratio = r / o
    verdict = "ok" if ratio >= TARGETS[name] else "BELOW TARGET"
    print(f"{name:8} raw loop {r:6.2f} s ({events / r:8.0f} ev/s)   "
          f"esctl Projector {o:6.2f} s ({events / o:8.0f} ev/s)   "
          f"ratio {ratio:4.2f} (target >= {TARGETS[name]}) {verdict}")


def bench_sqlite(events: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        store = open_store(f"sqlite:///{path}")
        store.setup()
        fill(store, events)
        measure("sqlite", store, raw_sqlite(path), events, rounds)
        store.close()


def bench_postgres(events: int, rounds: int) -> None:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    store = open_store(DSN, schema=schema)
    try:
        store.setup()
        fill(store, events)
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f'VACUUM ANALYZE "{schema}".events')
        measure("postgres", store, raw_postgres(schema), events, rounds)
    finally:
        store.close()
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- under the runner: 1 projector vs 4 sharing one read ------------------------------------
RUNNER_TARGET = 1.3


def runner_settings(url: str, schema: str | None, processors: list[str],
                    **processing: Any) -> Any:
    from esctl_lib.config import load_settings

    store: dict[str, Any] = {"url": url}
    if schema is not None:
        store["schema"] = schema
    return load_settings(cwd=Path(tempfile.gettempdir()), overrides={
        "store": store, "processing": processing or {"retry": "exponential"},
        "app": {"paths": [str(Path(__file__).parent)], "processors": processors,
                "events": ["catchup_app"]},
        "logging": {"level": "warning"}})


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's reaped children: the runner's."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: CPU seconds of the runner's children in the last catch_up_under_runner (start-up
#: included): on a loaded machine a steadier figure than the wall time.
LAST_CHILD_CPU = [0.0]


def catch_up_under_runner(store: EventStore, settings: Any, names: list[str],
                          head: int) -> float:
    """Wall time from starting a Runner to every named tracker at ``head``."""
    import threading

    from esctl_lib.runner import Runner, RunnerSettings

    with store.transaction() as tx:
        for name in names:
            tx.reset_tracker(name, 0)
    runner = Runner(RunnerSettings(settings, idle_timeout=0.05), grace_period=30)
    cpu = children_cpu()
    start = time.perf_counter()
    thread = threading.Thread(target=runner.run, kwargs={"install_signal_handlers": False})
    thread.start()
    try:
        while any(store.get_tracker(n) != head for n in names):
            time.sleep(0.02)
        return time.perf_counter() - start
    finally:
        runner.request_stop()
        thread.join()
        LAST_CHILD_CPU[0] = children_cpu() - cpu


def reset_tables(store: EventStore, projectors: list[type[Projector]]) -> None:
    with store.transaction() as tx:
        for p in projectors:
            for table in p.tables:
                tx.execute(f"DROP TABLE IF EXISTS {table}")


def server_cpu() -> float | None:
    """CPU seconds the local PostgreSQL server has used (None when it cannot be read): its
    live processes' own, plus what the postmaster has reaped from backends that exited (a
    child's CPU counts once it ends). CPU time, so another load on the machine does not
    change it."""
    tick = os.sysconf("SC_CLK_TCK")
    total, found = 0, False
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm not in ("postgres", "postmaster"):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        # utime + stime, and cutime + cstime (only the postmaster reaps children)
        total += sum(int(v) for v in fields[11:15])
        found = True
    return total / tick if found else None


def measure_runner(label: str, store: EventStore, url: str, schema: str | None,
                   events: int, rounds: int) -> None:
    ref = "catchup_app:Counter"
    one = runner_settings(url, schema, [f"{ref}0"])
    four = runner_settings(url, schema, [f"{ref}{i}" for i in range(4)])
    alone = runner_settings(url, schema, [f"{ref}{i}" for i in range(4)],
                            shared_reads=False)
    head = store.latest_position()
    names = [c.name for c in COUNTERS]
    two = runner_settings(url, schema, [f"{ref}{i}" for i in range(4)], read_groups=2)
    times: dict[str, list[float]] = {"1": [], "4 shared": [], "4 in 2 groups": [],
                                     "4 unshared": []}
    cpus: dict[str, list[float]] = {k: [] for k in times}
    servers: dict[str, list[float]] = {k: [] for k in times}
    for _ in range(rounds):
        for key, settings, wanted in (("1", one, names[:1]), ("4 shared", four, names),
                                      ("4 in 2 groups", two, names),
                                      ("4 unshared", alone, names)):
            reset_tables(store, COUNTERS)
            before = server_cpu()
            times[key].append(catch_up_under_runner(store, settings, wanted, head))
            after = server_cpu()
            cpus[key].append(LAST_CHILD_CPU[0])
            if before is not None and after is not None:
                servers[key].append(after - before)
            for counter in COUNTERS[:len(wanted)]:
                (table,) = counter.tables
                with store.transaction() as tx:
                    row = tx.fetchone(f"SELECT sum(n) FROM {table}")
                assert row is not None and int(row[0]) == events, (table, row)
    best = {k: min(v) for k, v in times.items()}
    ratio = best["4 shared"] / best["1"]
    verdict = "ok" if ratio <= RUNNER_TARGET else "ABOVE TARGET"
    print(f"{label:8} runner, {events} events (best of {rounds}): 1 projector "
          f"{best['1']:6.2f} s   4 shared {best['4 shared']:6.2f} s   4 unshared "
          f"{best['4 unshared']:6.2f} s   4 in 2 groups {best['4 in 2 groups']:6.2f} s\n"
          f"{'':8} ratio 4 shared / 1 = {ratio:4.2f} (target <= {RUNNER_TARGET}) {verdict}"
          f"   4 in 2 groups / 1 = {best['4 in 2 groups'] / best['1']:4.2f}"
          f"   4 unshared / 1 = {best['4 unshared'] / best['1']:4.2f} (before)")
    cpu = {k: min(v) for k, v in cpus.items()}
    print(f"{'':8} children's CPU (start-up included, min): " + "   ".join(
        f"{k} {v:5.2f} s" for k, v in cpu.items())
        + f"   4 shared / 1 = {cpu['4 shared'] / cpu['1']:4.2f}")
    if label == "postgres" and all(servers.values()):  # a local server: its CPU time
        server = {k: min(v) for k, v in servers.items()}
        cores = os.cpu_count() or 1
        floor = (cpu["4 shared"] + server["4 shared"]) / cores
        print(f"{'':8} the local PostgreSQL server's CPU (min): " + "   ".join(
            f"{k} {v:5.2f} s" for k, v in server.items())
            + f"\n{'':8} 4 shared need at least (children + server) / {cores} cores = "
            f"{floor:5.2f} s, so their ratio to 1 is at least {floor / best['1']:4.2f}")


def bench_runner(backends: list[str], events: int, rounds: int) -> None:
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            store = open_store(url)
            store.setup()
            fill(store, events)
            measure_runner("sqlite", store, url, None, events, rounds)
            store.close()
    if "postgres" in backends:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        store = open_store(DSN, schema=schema)
        try:
            store.setup()
            fill(store, events)
            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute(f'VACUUM ANALYZE "{schema}".events')
            measure_runner("postgres", store, DSN, schema, events, rounds)
        finally:
            store.close()
            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runner", action="store_true",
                        help="1 vs 4 projectors under the runner (shared read)")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if args.runner:
        bench_runner(backends, args.events or 300_000, args.rounds)
        return
    events = args.events or 200_000
    if "sqlite" in backends:
        bench_sqlite(events, args.rounds)
    if "postgres" in backends:
        bench_postgres(events, args.rounds)


if __name__ == "__main__":
    main()
