"""Issue 14 part 3: a CPU-heavy projector over 200,000 events, 2 partitions vs 1.

Both run under the runner (``esctl run``'s ``Runner``: spawned children, start-up
included), in the same run, on the same store: the wall time from starting the runner to
every partition's tracker at the head. Throughput ratio = time(1 partition) /
time(2 partitions). Target on a 2-core machine: >= 1.7.

    python bench/partitions.py [--backend sqlite|postgres|both] [--events 200000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

from catchup_app import Heavy
from projector_catchup import (
    DSN,
    LAST_CHILD_CPU,
    catch_up_under_runner,
    fill,
    runner_settings,
    server_cpu,
)

from esctl_lib import EventStore, open_store
from esctl_lib.processing.partitions import partition_names

TARGET = 1.7


def machine_busy() -> float:
    """CPU seconds every core of this machine has spent busy (not idle or waiting on I/O),
    from /proc/stat: with the server on the same machine, its share counts too."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def measure(label: str, store: EventStore, url: str, schema: str | None, rounds: int,
            events: int) -> None:
    head = store.latest_position()
    best: dict[int, float] = {}
    cpu: dict[int, float] = {}
    busy: dict[int, float] = {}
    server: dict[int, float] = {}
    for _ in range(rounds):
        for count in (1, 2):
            settings = runner_settings(url, schema, ["catchup_app:Heavy"],
                                       partitions={Heavy.name: count})
            old = [n for n in store.trackers() if n.startswith(Heavy.name)]
            with store.transaction() as tx:
                tx.execute("DROP TABLE IF EXISTS bench_heavy")
                for name in old:
                    tx.execute("DELETE FROM trackers WHERE name = "
                               f"{tx.placeholder}", (name,))
            instance: Any = Heavy()
            instance.partitions = count
            names = partition_names(instance)
            before, server_before = machine_busy(), server_cpu()
            elapsed = catch_up_under_runner(store, settings, names, head)
            used = machine_busy() - before
            server_after = server_cpu()
            server[count] = min(server.get(count, float("inf")),
                                (server_after or 0.0) - (server_before or 0.0))
            with store.transaction() as tx:
                row = tx.fetchone("SELECT sum(n) FROM bench_heavy")
            assert row is not None and int(row[0]) == events, row
            if elapsed < best.get(count, float("inf")):
                busy[count] = used
            best[count] = min(best.get(count, float("inf")), elapsed)
            cpu[count] = min(cpu.get(count, float("inf")), LAST_CHILD_CPU[0])
    ratio = best[1] / best[2]
    verdict = "ok" if ratio >= TARGET else "BELOW TARGET"
    print(f"{label:8} {events} events, best of {rounds}: 1 partition {best[1]:6.2f} s "
          f"({events / best[1]:7.0f} ev/s)   2 partitions {best[2]:6.2f} s "
          f"({events / best[2]:7.0f} ev/s)   throughput ratio {ratio:4.2f} "
          f"(target >= {TARGET}) {verdict}\n{'':8} children's CPU (start-up included): "
          f"1 partition {cpu[1]:6.2f} s   2 partitions {cpu[2]:6.2f} s (both together; "
          f"with 2 free cores the bound on the ratio is about 2 x {cpu[1]:.2f} / {cpu[2]:.2f}"
          f" = {2 * cpu[1] / cpu[2]:4.2f})\n{'':8} the whole machine's busy CPU (the database "
          f"server's included): 1 partition {busy[1]:6.2f} s   2 partitions {busy[2]:6.2f} s; "
          f"{os.cpu_count()} cores: 2 partitions need at least {busy[2] / (os.cpu_count() or 1):.2f}"
          f" s, so the ratio is at most {best[1] / (busy[2] / (os.cpu_count() or 1)):4.2f}")
    if label == "postgres" and server_cpu() is not None:  # a local server: its CPU time
        both = {n: cpu[n] + server[n] for n in (1, 2)}
        print(f"{'':8} the local PostgreSQL server's CPU (least of {rounds}): 1 partition "
              f"{server[1]:6.2f} s   2 partitions {server[2]:6.2f} s; children + server: "
              f"{both[1]:.2f} s and {both[2]:.2f} s, so on 2 free cores the ratio is at most "
              f"about 2 x {both[1]:.2f} / {both[2]:.2f} = {2 * both[1] / both[2]:4.2f}")


def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            store = open_store(url)
            store.setup()
            fill(store, args.events)
            measure("sqlite", store, url, None, args.rounds, args.events)
            store.close()
    if args.backend in ("postgres", "both"):
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        store = open_store(DSN, schema=schema)
        try:
            store.setup()
            fill(store, args.events)
            measure("postgres", store, DSN, schema, args.rounds, args.events)
        finally:
            store.close()
            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
