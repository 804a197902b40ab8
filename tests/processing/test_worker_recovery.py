"""A worker that loses its connections reconnects and takes its lock again in place: no
restart, every event applied once, and a blip costs well under a second.

PostgreSQL only: the blip is ``pg_terminate_backend`` on every connection of the runner's
child (found by its sockets, so that nothing else on the server is touched)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from esctl_lib import EventStore
from esctl_lib.processing.state import read_state
from esctl_lib.testing import eventually
from tests.backends import POSTGRES_DSN, StoreSpec
from tests.processing.runner_apps.apps import RunnerTick
from tests.processing.runner_apps.support import start_runner, stop

pytestmark = [pytest.mark.parametrize("store_spec", ["postgres"], indirect=True),
              pytest.mark.slow]


def client_ports(pid: int) -> set[int]:
    """Local TCP ports of process ``pid``'s sockets (its database connections)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def terminate_connections_of(pid: int) -> int:
    import psycopg

    ports = sorted(client_ports(pid))
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE client_port = ANY(%s) AND pid <> pg_backend_pid()", (ports,)).fetchall()
    return len(rows)


def test_a_blip_of_lost_connections_costs_under_a_second_without_a_restart(
    store_spec: StoreSpec, tmp_path: Path
) -> None:
    store: EventStore = store_spec.opened[0]
    runner = start_runner(store_spec, tmp_path, "TickCounter")
    log = tmp_path / "runner.log"
    aggregates = [str(uuid.uuid4()) for _ in range(3)]
    appended: list[int] = []
    done = threading.Event()

    def append() -> None:  # a steady stream: one tick every 5 ms
        while not done.is_set():
            agg = aggregates[len(appended) % 3]
            store.append([RunnerTick(aggregate_id=agg)])
            appended.append(1)
            time.sleep(0.005)

    writer = threading.Thread(target=append, daemon=True)
    try:
        first = eventually(lambda: (s := read_state(store, "tick_counter")) and s.state == "idle"
                           and s.pid, timeout=30, what="the child to be idle")
        writer.start()
        eventually(lambda: store.get_tracker("tick_counter") > 50, timeout=30)
        started, kills = time.monotonic(), 0
        while time.monotonic() - started < 0.2:  # ~0.2 s worth of kills
            kills += terminate_connections_of(first)
            time.sleep(0.02)
        at_end = store.get_tracker("tick_counter")
        resumed_position = eventually(
            lambda: (p := store.get_tracker("tick_counter")) > at_end and p, timeout=30,
            what="processing to resume")
        lost = time.monotonic() - started
        done.set()
        writer.join(timeout=10)
        head = eventually(lambda: store.latest_position() >= len(appended)
                          and store.latest_position(), timeout=30)
        eventually(lambda: store.get_tracker("tick_counter") == head, timeout=30,
                   what="the child to catch up")
        state = read_state(store, "tick_counter")
    finally:
        done.set()
        stop(runner)
    with store.transaction() as tx:
        rows = dict(tx.fetchall("SELECT aggregate_id, n FROM tick_counts"))
    expected = {a: len(range(i, len(appended), 3)) for i, a in enumerate(aggregates)}
    print(f"blip: {kills} connections killed; processing resumed at {resumed_position} "
          f"{lost:.3f} s after the first kill")
    assert kills >= 1
    assert {str(k): int(v) for k, v in rows.items()} == expected  # each event once
    assert state is not None and state.pid == first  # the same child
    text = log.read_text()
    assert "restarting in" not in text and text.count("started tick_counter") == 1
    assert lost < 2.0
