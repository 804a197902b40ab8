"""Followers ride through the loss of every connection (what a server restart does).

A writer appends events while a killer terminates, again and again, every backend this test
opened (its own process's and the ``tail --follow`` child's, found by their client ports:
other suites share the server, so nothing else is touched). ``subscribe()``, ``tail
--follow --json`` and ``wait_for`` must carry on from their position and see every event
exactly once, in stream order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

import psycopg

from esctl_lib import DuplicateEventError, Event, StoreUnavailableError, wait_for
from esctl_lib.testing import eventually
from tests.postgres.conftest import PgSpec

N = 1500
KILL_ROUNDS = 12
KILL_EVERY = 0.1


def client_ports(pid: int) -> set[int]:
    """Local TCP ports of the sockets process ``pid`` has open (Linux /proc)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def kill_backends(admin: psycopg.Connection[Any], pids: list[int]) -> int:
    """Terminate every backend whose client is one of ``pids`` (never ``admin``'s own)."""
    ports = sorted(set().union(*(client_ports(p) for p in pids)))
    if not ports:
        return 0
    rows = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND client_port = ANY(%s)", (ports,),
    ).fetchall()
    return len(rows)


def backends_of(admin: psycopg.Connection[Any], pid: int) -> int:
    ports = sorted(client_ports(pid))
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND client_port = ANY(%s)", (ports,),
    ).fetchone()
    return int(row[0]) if row else 0


def append_surviving_kills(store: Any, events: list[Event]) -> None:
    """Append each event once, retrying a lost connection (an append whose commit was
    acknowledged by nobody may have committed: then its uuid is already stored)."""
    for event in events:
        while True:
            try:
                store.append([event])
                break
            except DuplicateEventError:
                break
            except StoreUnavailableError:
                time.sleep(0.01)


def kill_repeatedly(admin: psycopg.Connection[Any], pids: list[int], writer: threading.Thread,
                    killed: list[int]) -> None:
    """Every KILL_EVERY seconds, KILL_ROUNDS times at most, while the writer writes."""
    for _ in range(KILL_ROUNDS):
        if not writer.is_alive():
            return
        killed.append(kill_backends(admin, pids))
        time.sleep(KILL_EVERY)


def read_json_lines(stream: IO[str], ids: list[int]) -> None:
    for line in stream:
        if line.strip():
            ids.append(int(json.loads(line)["id"]))


def fresh_events(n: int) -> list[Event]:
    return [Event(aggregate_id=str(uuid.uuid4()), type="restart_probe", body={"n": i})
            for i in range(n)]


def test_subscribe_and_tail_follow_see_every_event_once_through_repeated_connection_loss(
    pg: PgSpec, admin: psycopg.Connection[Any], tmp_path: Path
) -> None:
    writer_store = pg.open(pool_size=2)
    follower_store = pg.open(poll_interval=0.2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    env.update({"ESCTL_STORE__URL": pg.url, "ESCTL_STORE__SCHEMA": pg.schema,
                "ESCTL_STORE__CONNECT_TIMEOUT": "5"})
    tail = subprocess.Popen([sys.executable, "-m", "esctl", "tail", "--follow", "--json"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    tailed: list[int] = []
    followed: list[int] = []
    stop = threading.Event()
    follower: threading.Thread | None = None
    try:
        assert tail.stdout is not None
        reader = threading.Thread(target=read_json_lines, args=(tail.stdout, tailed),
                                  daemon=True)
        reader.start()

        def follow() -> None:
            for page in follower_store.subscribe(0, stop=stop, idle_timeout=0.2):
                followed.extend(e.id or 0 for e in page.events)

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        # Both followers are connected (and idle, caught up) before the first kill.
        eventually(lambda: backends_of(admin, tail.pid) >= 1, timeout=60,
                   what="the tail child connected")
        eventually(lambda: follower_store.listener_pid is not None, timeout=30,
                   what="the subscriber listening")

        writer = threading.Thread(target=append_surviving_kills,
                                  args=(writer_store, fresh_events(N)), daemon=True)
        killed: list[int] = []
        writer.start()
        kill_repeatedly(admin, [os.getpid(), tail.pid], writer, killed)
        writer.join(timeout=120)
        assert not writer.is_alive()
        assert sum(killed) >= 2, killed  # the followers' connections were hit

        expected = [e.id for e in pg.open().iter_range(0)]
        assert len(expected) == N
        def caught_up() -> bool:
            assert follower is not None and follower.is_alive(), "the subscriber ended"
            assert tail.poll() is None, f"tail --follow ended: {tail.stderr}"
            return len(followed) >= N and len(tailed) >= N

        eventually(caught_up, timeout=60, what="both followers saw every event")
        assert followed == expected
        assert tailed == expected
        assert tail.poll() is None, tail.stderr.read() if tail.stderr else ""
    finally:
        stop.set()
        if follower is not None:
            follower.join(timeout=30)
        tail.terminate()
        tail.wait(timeout=30)


def test_wait_for_rides_through_lost_connections(pg: PgSpec,
                                                 admin: psycopg.Connection[Any]) -> None:
    store = pg.open(pool_size=2)
    stored = store.append(fresh_events(1))[0]
    assert stored.id is not None
    store.set_tracker("proc", stored.id - 1)
    done = threading.Event()
    result: list[bool | BaseException] = []

    def waiter() -> None:
        try:
            result.append(wait_for(store, "proc", stored.id, timeout=30))
        except BaseException as e:
            result.append(e)
        done.set()

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    killed = 0
    for _ in range(KILL_ROUNDS):
        killed += kill_backends(admin, [os.getpid()])
        time.sleep(KILL_EVERY)
    assert killed >= 1
    assert not done.is_set()
    pg.open().set_tracker("proc", stored.id)
    thread.join(timeout=30)
    assert result == [True]

