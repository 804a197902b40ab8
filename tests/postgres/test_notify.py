"""LISTEN/NOTIFY wake-ups: fast, per store, and surviving a killed listener connection."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import psycopg

from esctl_lib import Event
from esctl_lib.stores.postgres import PostgresStore, channel_name
from esctl_lib.stores.postgres.listen import Notifier
from tests.postgres.conftest import PgSpec

NO_POLL = 3600.0  # a fallback poll so slow that only a notification can wake a waiter


def ev(n: int = 0) -> Event:
    return Event(aggregate_id=str(uuid.uuid4()), type="pg_ping", body={"n": n})


def wait_in_thread(store: PostgresStore, position: int, timeout: float) -> tuple[
    threading.Thread, list[bool]
]:
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(store.wait(position, timeout)))
    thread.start()
    return thread, result


def listening(store: PostgresStore) -> int:
    """Start the store's listener and return its backend pid."""
    store.wait(0, 0.01)
    assert store.listener_pid is not None
    return store.listener_pid


def test_a_notification_wakes_a_waiter_long_before_the_fallback_poll(pg: PgSpec) -> None:
    waiter = pg.open(poll_interval=NO_POLL)
    listening(waiter)
    thread, result = wait_in_thread(waiter, 0, NO_POLL)
    pg.open().append([ev()])
    thread.join(timeout=20)
    assert result == [True]


def test_a_killed_listener_connection_is_replaced(
    pg: PgSpec, admin: psycopg.Connection[Any]
) -> None:
    waiter = pg.open(poll_interval=NO_POLL)
    old_pid = listening(waiter)
    admin.execute("SELECT pg_terminate_backend(%s)", (old_pid,))
    deadline = time.monotonic() + 20
    while waiter.listener_pid in (None, old_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    thread, result = wait_in_thread(waiter, 0, NO_POLL)
    pg.open().append([ev()])
    thread.join(timeout=20)
    assert waiter.listener_pid not in (None, old_pid)
    assert result == [True]


def test_a_subscriber_loses_no_event_when_its_listener_is_killed(
    pg: PgSpec, admin: psycopg.Connection[Any]
) -> None:
    reader, writer = pg.open(poll_interval=0.5), pg.open()
    stop = threading.Event()
    seen: list[int] = []

    def follow() -> None:
        for page in reader.subscribe(0, stop=stop, idle_timeout=0.1):
            seen.extend(e.body["n"] for e in page.events)

    follower = threading.Thread(target=follow)
    follower.start()
    try:
        for n in range(30):
            writer.append([ev(n)])
            if n == 10 and reader.listener_pid is not None:
                admin.execute("SELECT pg_terminate_backend(%s)", (reader.listener_pid,))
        deadline = time.monotonic() + 20
        while len(seen) < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        follower.join(timeout=10)
    assert seen == list(range(30))


def test_two_stores_in_one_database_do_not_wake_each_other(pg: PgSpec) -> None:
    other = PgSpec()
    other_store = other.open()
    try:
        other_store.setup()
        waiter = pg.open(poll_interval=NO_POLL)
        listening(waiter)
        thread, result = wait_in_thread(waiter, 0, 1.0)
        other_store.append([ev()])
        thread.join(timeout=20)
        assert result == [False]
    finally:
        other_store.close()
        from tests.backends import drop_schema

        drop_schema(other.schema)


def test_channel_names_differ_per_schema_and_fit_an_identifier() -> None:
    long_a, long_b = "a" * 63, "a" * 62 + "b"
    assert channel_name("app_one") != channel_name("app_two")
    assert channel_name(long_a) != channel_name(long_b)
    assert max(len(channel_name(s)) for s in (long_a, long_b)) <= 63


def notifications(conn: psycopg.Connection[Any], quiet: float) -> list[float]:
    """When each notification arrived, until none came for ``quiet`` seconds."""
    arrived: list[float] = []
    while True:
        got = [time.monotonic() for _ in conn.notifies(timeout=quiet, stop_after=1)]
        if not got:
            return arrived
        arrived.extend(got)


def test_each_commit_of_an_unhurried_writer_is_notified_at_once(pg: PgSpec) -> None:
    writer = pg.open()
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f'LISTEN "{writer.channel}"')
        delays = []
        for n in range(10):
            writer.append([ev(n)])
            committed = time.monotonic()
            arrived = notifications(conn, quiet=0.2)
            assert len(arrived) == 1
            delays.append(arrived[0] - committed)
    assert max(delays) < 0.2  # at once, not at the end of a pacing interval


def test_a_busy_writer_covers_many_commits_with_one_notification(pg: PgSpec) -> None:
    # A notifier paced at 50/s, poked about 1,000 times a second: busy on any machine.
    channel = "esctl_test_" + uuid.uuid4().hex[:8]
    notifier = Notifier(lambda: psycopg.connect(pg.url, autocommit=True), channel,
                        rate=50.0, burst=8, busy_interval=0.025)
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f'LISTEN "{channel}"')
        started = time.monotonic()
        for _ in range(400):
            notifier.poke()
            time.sleep(0.001)
        last_poke = time.monotonic()
        arrived = notifications(conn, quiet=0.5)
        notifier.close()
    bound = 8 + (last_poke - started) * 50 + 5  # the burst, then at most one per 1/rate
    assert 1 <= len(arrived) <= bound < 400
    assert arrived[-1] >= last_poke  # the newest pokes were notified too
