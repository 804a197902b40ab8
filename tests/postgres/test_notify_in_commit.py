"""A quiet store's appends notify in their own statement; a busy one leaves it to the
notifier thread (``listen.CommitNotify``).

Who sent a notification is told by its sender's backend pid: the store's pool connections
are named ``esctl pool`` in ``pg_stat_activity``, the notifier's ``esctl notify``.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from esctl_lib import ConcurrencyError, DuplicateEventError, Event, open_async_store
from esctl_lib.stores.postgres import PostgresStore
from esctl_lib.stores.postgres.listen import CommitNotify
from tests.postgres.conftest import PgSpec


def ev(aggregate_id: str | None = None, n: int = 0) -> Event:
    return Event(aggregate_id=aggregate_id or str(uuid.uuid4()), type="nic_ping",
                 body={"n": n})


def arrivals(conn: psycopg.Connection[Any], quiet: float = 0.3) -> list[tuple[int, float]]:
    """(sender pid, when) of the notifications that arrive until none comes for ``quiet``
    seconds."""
    got: list[tuple[int, float]] = []
    while True:
        new = [(n.pid, time.monotonic()) for n in conn.notifies(timeout=quiet, stop_after=1)]
        if not new:
            return got
        got.extend(new)


def senders(conn: psycopg.Connection[Any], quiet: float = 0.3) -> list[int]:
    """The sender pids of the notifications that arrive until none comes for ``quiet`` s."""
    return [pid for pid, _ in arrivals(conn, quiet)]


def roles(admin: psycopg.Connection[Any], pids: list[int]) -> Counter[str]:
    """How many of ``pids`` belong to each application name (the sender connections are
    still open: the store is)."""
    names = dict(admin.execute(
        "SELECT pid, application_name FROM pg_stat_activity WHERE pid = ANY(%s)",
        (list(set(pids)),)).fetchall())
    return Counter(names.get(pid, "gone") for pid in pids)


@pytest.fixture
def listening(pg: PgSpec) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f'LISTEN "{pg.open().channel}"')
        yield conn


# -- the policy, on its own ---------------------------------------------------------------
def test_a_fresh_policy_notifies_in_the_commit() -> None:
    assert CommitNotify().wanted()


def test_a_fast_writer_is_left_to_the_notifier_and_comes_back_when_it_slows() -> None:
    policy = CommitNotify()
    now, last = 1000.0, 1
    for _ in range(40):  # this object appends 2,000 times a second, nobody else
        policy.observe(last, 1, now, now + 0.0005)
        now, last = now + 0.0005, last + 1
    assert policy.pace > 500 and policy.load == 0
    assert not policy.wanted()
    for _ in range(40):  # 10 appends a second
        now, last = now + 0.1, last + 1
        policy.observe(last, 1, now - 0.0005, now)
    assert policy.pace < 20
    assert policy.wanted()


def test_a_lone_writer_notifies_in_each_commit_however_slow_its_disk() -> None:
    # 200 commits a second of 2 ms each: its own commits hold the lock 40 % of the time,
    # but it never waits for itself, and nobody else writes. (A deep bucket: the loop
    # below runs faster than the times it pretends.)
    policy = CommitNotify(burst=1000)
    now, last = 1000.0, 1
    wanted = []
    for _ in range(200):
        wanted.append(policy.wanted())
        policy.observe(last, 1, now - 0.002, now)
        now, last = now + 0.005, last + 1
    assert policy.load == 0
    assert all(wanted)


def test_other_writers_ids_count_towards_the_load() -> None:
    policy = CommitNotify()
    now, last = 1000.0, 1
    for _ in range(40):  # this process appends 10 times a second, others 990 ids between
        now, last = now + 0.1, last + 100
        policy.observe(last, 1, now - 0.001, now)
    assert policy.load == pytest.approx(990 * 0.001, rel=0.05)
    assert not policy.wanted()


def test_a_batch_is_not_counted_as_other_writers() -> None:
    policy = CommitNotify()
    now, last = 1000.0, 1
    for _ in range(40):  # batches of 100, 10 a second, and nobody else
        now, last = now + 0.1, last + 100
        policy.observe(last, 100, now - 0.001, now)
    assert policy.load == 0
    assert policy.wanted()


def test_one_process_notifies_in_the_commit_at_most_at_the_buckets_rate() -> None:
    policy = CommitNotify(rate=1.0, burst=3)
    assert [policy.wanted() for _ in range(5)] == [True, True, True, False, False]


def test_after_a_refusal_the_policy_stays_off_for_its_cooldown() -> None:
    policy = CommitNotify(cooldown=3600.0)
    policy.refused()
    assert not policy.wanted()
    again = CommitNotify(cooldown=0.0)
    again.refused()
    assert again.wanted()


# -- on the server ------------------------------------------------------------------------
def test_a_quiet_append_notifies_from_its_own_connection(
        pg: PgSpec, listening: psycopg.Connection[Any], admin: psycopg.Connection[Any]) -> None:
    store = pg.open()
    agg = str(uuid.uuid4())
    store.append([ev(agg)], expected_version=0)
    one = senders(listening)
    stored = store.append([ev(agg, n) for n in range(1, 4)], expected_version=1)
    batch = senders(listening)
    assert len(one) == 1 and len(batch) == 1
    assert roles(admin, one + batch) == {"esctl pool": 2}
    assert [e.version for e in stored] == [2, 3, 4]
    ids = [e.id or 0 for e in stored]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert [e.version for e in store.read_aggregate(agg)] == [1, 2, 3, 4]


def test_an_append_that_inserts_nothing_notifies_nothing(
        pg: PgSpec, listening: psycopg.Connection[Any]) -> None:
    store = pg.open()
    agg = str(uuid.uuid4())
    first = store.append([ev(agg)], expected_version=0)[0]
    assert len(senders(listening)) == 1
    with pytest.raises(ConcurrencyError):
        store.append([ev(agg)], expected_version=0)
    with pytest.raises(ConcurrencyError):
        store.append([ev(agg), ev(agg)], expected_version=5)
    twin = Event(aggregate_id=agg, type="nic_ping", body={}, uuid=first.uuid)
    with pytest.raises(DuplicateEventError):
        store.append([twin], expected_version=1)
    assert senders(listening) == []
    assert len(store.read_aggregate(agg)) == 1


def test_a_busy_store_leaves_notifying_to_the_notifier(
        pg: PgSpec, listening: psycopg.Connection[Any], admin: psycopg.Connection[Any]) -> None:
    # Four threads back to back: the store-wide event rate times the append time is about
    # four (each thread appends again as soon as its last append returns), far over the
    # policy's 0.4, however fast or slow the machine.
    store = pg.open()
    errors: list[BaseException] = []

    def writer() -> None:
        agg = str(uuid.uuid4())
        try:
            for n in range(100):
                store.append([ev(agg, n)], expected_version=n)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    last_commit = time.monotonic()
    got = arrivals(listening, quiet=0.5)
    assert not errors
    by_role = roles(admin, [pid for pid, _ in got])
    assert by_role["esctl notify"] >= 1, by_role
    assert by_role["esctl pool"] < 100, by_role  # the first few, before the load showed
    assert len(got) < 400
    assert max(at for _, at in got) > last_commit  # the newest commits were notified too
    assert store.count() == 400


def test_a_notification_the_server_refuses_never_costs_the_append(
        pg: PgSpec, listening: psycopg.Connection[Any]) -> None:
    store = pg.open()
    store.channel = "c" * 80  # pg_notify refuses a channel name this long (22023)
    agg = str(uuid.uuid4())
    first = store.append([ev(agg)], expected_version=0)
    batch = store.append([ev(agg, 1), ev(agg, 2)], expected_version=1)
    assert [e.version for e in first + batch] == [1, 2, 3]
    assert [e.version for e in store.read_aggregate(agg)] == [1, 2, 3]


def test_notify_in_commit_off_leaves_every_notification_to_the_notifier(
        pg: PgSpec, listening: psycopg.Connection[Any], admin: psycopg.Connection[Any]) -> None:
    store: PostgresStore = pg.open(notify_in_commit=False)
    agg = str(uuid.uuid4())
    store.append([ev(agg)], expected_version=0)
    store.append([ev(agg, 1), ev(agg, 2)], expected_version=1)
    pids = senders(listening)
    assert pids and set(roles(admin, pids)) == {"esctl notify"}


def test_notify_off_sends_nothing_at_all(
        pg: PgSpec, listening: psycopg.Connection[Any]) -> None:
    store = pg.open(notify=False)
    assert not store.notify_in_commit
    store.append([ev()])
    assert senders(listening) == []


def test_the_async_store_notifies_in_the_commit_too(
        pg: PgSpec, listening: psycopg.Connection[Any], admin: psycopg.Connection[Any]) -> None:
    pids: list[int] = []

    async def main() -> None:
        async with open_async_store(pg.url, schema=pg.schema) as store:
            agg = str(uuid.uuid4())
            await store.append([ev(agg)], expected_version=0)
            await store.append([ev(agg, 1), ev(agg, 2)], expected_version=1)
            with pytest.raises(ConcurrencyError):
                await store.append([ev(agg)], expected_version=0)
            pids.extend(await asyncio.to_thread(senders, listening))
            assert roles(admin, pids) == {"esctl aio": 2}
            store.channel = "c" * 80  # type: ignore[attr-defined]  # refused, as above
            more = await store.append([ev(agg, 3)], expected_version=3)
            assert [e.version for e in more] == [4]

    asyncio.run(main())
