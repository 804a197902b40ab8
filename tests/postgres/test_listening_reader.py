"""A worker's listening reader waits and reads on one connection of its own
(``listening_reader.py``): woken
by notifications on that connection, losing nothing across reads and lost connections."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from esctl_lib import Event, StoreError, StoreUnavailableError, run_processor
from esctl_lib.processing import Processor, handles_all
from esctl_lib.stores.postgres.listening_reader import ListeningReader
from esctl_lib.stores.postgres.store import PostgresStore
from esctl_lib.testing import eventually
from tests.postgres.conftest import PgSpec

NO_POLL = 3600.0  # a fallback poll so slow that only a notification can wake a follower


def ev(n: int = 0) -> Event:
    return Event(aggregate_id=str(uuid.uuid4()), type="follow_ping", body={"n": n})


def caught_up(follower: ListeningReader, position: int = 0) -> int:
    """Read to the end from ``position``; the position the read ended at."""
    page, _ = follower.read_page_parked(position, "p")
    assert len(page.events) < 1000
    return page.end


def kill_backend(admin: psycopg.Connection[Any], reader: ListeningReader) -> int:
    """Terminate the reader's backend and wait until it is gone; its pid."""
    old = reader.backend_pid
    assert old is not None
    admin.execute("SELECT pg_terminate_backend(%s)", (old,))
    eventually(lambda: not admin.execute(
        "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (old,)).fetchone())
    return old


def roles(admin: psycopg.Connection[Any], schema_app: str = "esctl reader") -> int:
    return int(admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
        (schema_app,)).fetchone()[0])


def test_a_notification_wakes_the_follower_long_before_the_fallback_poll(pg: PgSpec) -> None:
    store = pg.open(poll_interval=NO_POLL)
    follower = store.listening_reader()
    try:
        end = caught_up(follower)
        assert follower.wait(end, 0.2) is False  # nothing new: it waits out its timeout
        woken: list[bool] = []
        waiter = threading.Thread(target=lambda: woken.append(follower.wait(end, NO_POLL)))
        waiter.start()
        time.sleep(0.1)  # let it block on its connection (it wakes however long this is)
        stored = pg.open().append([ev(1)])
        waiter.join(timeout=20)
        assert woken == [True]
        page, parked = follower.read_page_parked(end, "p")
        assert [e.id for e in page.events] == [stored[0].id] and parked == {}
    finally:
        follower.close()


def test_a_commit_between_a_read_and_the_wait_is_not_missed(pg: PgSpec) -> None:
    # The read that caught up lets the next wait skip looking at the table; the commit
    # that came after it must still wake that wait (its notification is queued).
    store = pg.open(poll_interval=NO_POLL)
    follower = store.listening_reader()
    try:
        end = caught_up(follower)
        pg.open().append([ev(1)])
        started = time.monotonic()
        assert follower.wait(end, 30.0) is True
        assert time.monotonic() - started < 10.0
        page, _ = follower.read_page_parked(end, "p")
        assert [e.body["n"] for e in page.events] == [1]
    finally:
        follower.close()


def test_many_notifications_are_answered_by_one_wake_up(pg: PgSpec) -> None:
    store = pg.open(poll_interval=NO_POLL)
    follower = store.listening_reader()
    try:
        end = caught_up(follower)
        writer = pg.open()
        for n in range(5):
            writer.append([ev(n)])
        time.sleep(0.3)  # the five notifications reach the connection
        assert follower.wait(end, 10.0) is True
        end = caught_up(follower, end)
        assert follower.wait(end, 0.3) is False  # the other four were drained with it
    finally:
        follower.close()


def test_a_killed_follower_connection_loses_no_event(
        pg: PgSpec, admin: psycopg.Connection[Any]) -> None:
    store = pg.open(poll_interval=NO_POLL)
    follower = store.listening_reader()
    try:
        end = caught_up(follower)
        old = kill_backend(admin, follower)
        stored = pg.open().append([ev(7)])  # its notification is lost with the connection
        results: list[bool | str] = []
        for _ in range(3):  # the first call may find the connection dead and say so
            try:
                results.append(follower.wait(end, 10.0))
                break
            except StoreUnavailableError as e:
                results.append(type(e).__name__)
        assert results[-1] is True
        assert follower.backend_pid not in (None, old)
        page, _ = follower.read_page_parked(end, "p")
        assert [e.id for e in page.events] == [stored[0].id]
    finally:
        follower.close()


def test_close_ends_its_connection_and_a_closed_store_refuses_a_new_one(
        pg: PgSpec, admin: psycopg.Connection[Any]) -> None:
    store = pg.open(application_name="esctl-t-follow")
    follower = store.listening_reader()
    caught_up(follower)
    assert roles(admin, "esctl-t-follow reader") == 1
    follower.close()
    eventually(lambda: roles(admin, "esctl-t-follow reader") == 0)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.listening_reader().wait(0, 0.1)


class Seen(Processor):
    name = "follow_seen"

    def __init__(self) -> None:
        self.seen: list[int] = []

    @handles_all
    def _any(self, event: Event, tx: Any) -> None:
        self.seen.append(event.body["n"])


def test_a_worker_waits_on_its_own_reader_not_the_shared_listener(
        pg: PgSpec, admin: psycopg.Connection[Any]) -> None:
    store = pg.open(poll_interval=NO_POLL, application_name="esctl-t-worker")
    processor = Seen()
    stop = threading.Event()
    worker = threading.Thread(target=run_processor, args=(processor, store),
                              kwargs={"stop": stop, "idle_timeout": 0.5})
    worker.start()
    try:
        writer = pg.open()
        eventually(lambda: roles(admin, "esctl-t-worker reader") == 1)
        for n in range(20):
            writer.append([ev(n)])
        eventually(lambda: processor.seen == list(range(20)), timeout=20)
        assert store.listener_pid is None  # the worker never needed the listener thread
    finally:
        stop.set()
        worker.join(timeout=20)
    assert not worker.is_alive()
    eventually(lambda: roles(admin, "esctl-t-worker reader") == 0)


def test_a_read_takes_the_notifications_before_it_and_a_closed_store_stops_reads(
        pg: PgSpec) -> None:
    store = pg.open(poll_interval=NO_POLL)
    reader = store.listening_reader()
    try:
        end = caught_up(reader)
        writer = pg.open()
        for n in range(20):  # a busy worker: it reads and never waits
            writer.append([ev(n)])
            time.sleep(0.01)
            end = caught_up(reader, end)
        assert reader.wait(end, 0.3) is False  # nothing piled up behind those reads
        store.close()
        with pytest.raises(StoreError, match="closed"):
            reader.read_page_parked(end, "p")
        assert reader.backend_pid is None
    finally:
        reader.close()


# -- a caught-up reader's wake-up (ListeningReader.read_page_parked: Reads.wake_up_page) --

Woken = tuple[ListeningReader, PostgresStore, PostgresStore]


@pytest.fixture
def woken(pg: PgSpec) -> Iterator[Woken]:
    """A listening reader (its store's poll too slow to matter), another store to write
    with, and the reader's store."""
    store = pg.open(poll_interval=NO_POLL)
    reader = store.listening_reader()
    try:
        yield reader, pg.open(), store
    finally:
        reader.close()


def typed(kind: str, n: int = 0) -> Event:
    return Event(aggregate_id=str(uuid.uuid4()), type=kind, body={"n": n})


def stream_key(admin: psycopg.Connection[Any], schema: str, event_id: int) -> tuple[int, int]:
    row = admin.execute(f'SELECT tx::text, id FROM "{schema}".events WHERE id = %s',
                        (event_id,)).fetchone()
    return int(row[0]), int(row[1])


def test_a_wake_up_reads_from_the_key_it_ended_at_and_keeps_its_types_only(
        woken: Woken, pg: PgSpec, admin: psycopg.Connection[Any]) -> None:
    reader, writer, store = woken
    writer.append([typed("wanted", 0)])
    page, _ = reader.read_page_parked(0, "p", types=["wanted"])  # the filtered read
    end = page.end
    assert [e.type for e in page.events] == ["wanted"] and reader._key is None
    for round_ in range(3):
        stored = [writer.append([typed(kind, round_)])[0]
                  for kind in ("other", "wanted", "other")]
        page, parked = reader.read_page_parked(end, "p", types=["wanted"])
        assert [e.id for e in page.events] == [stored[1].id]
        assert page.events[0].body == {"n": round_} and parked == {}
        # it ends past the other types' events, where a filtered read ends too
        assert page.end == stored[2].id == store.read_page(
            end, types=["wanted"]).end
        assert reader._key == (page.end, stream_key(admin, pg.schema, page.end))
        end = page.end


def test_a_wake_up_whose_scan_fills_its_limit_reads_on_to_the_head(woken: Woken) -> None:
    """Other types fill the scan: the same call goes on with the filtered read, so a page
    short of its limit is one that reached the head (a worker takes it for caught up), and
    the next wake-up starts there, not from the key the scan ended at."""
    reader, writer, _ = woken
    end = reader.read_page_parked(0, "p", types={"wanted"}, limit=3)[0].end
    for n in range(4):
        writer.append([typed("other", n)])
    wanted = [writer.append([typed("wanted", n)])[0] for n in range(2)]
    page, _ = reader.read_page_parked(end, "p", types={"wanted"}, limit=3)
    assert [e.id for e in page.events] == [w.id for w in wanted]
    assert page.end == wanted[1].id
    assert reader.wait(page.end, 0.0) is False  # caught up: it waits for a notification
    newer = writer.append([typed("wanted", 2)])[0]
    page, _ = reader.read_page_parked(page.end, "p", types=("wanted",), limit=3)
    assert [e.id for e in page.events] == [newer.id] and page.end == newer.id


def test_a_wake_up_of_a_partition_reads_that_partition_only(woken: Woken) -> None:
    from esctl_lib.processing.partitions import partition_of

    reader, writer, _ = woken
    end = reader.read_page_parked(0, "p", partition=(0, 2))[0].end
    ids = [str(uuid.uuid4()) for _ in range(64)]
    ours = [a for a in ids if partition_of(a, 2) == 0][:3]
    theirs = [a for a in ids if partition_of(a, 2) == 1][:3]
    stored = [writer.append([Event(aggregate_id=a, type="follow_ping")])[0]
              for pair in zip(ours, theirs, strict=True) for a in pair]
    page, _ = reader.read_page_parked(end, "p", partition=(0, 2))
    assert [e.id for e in page.events] == [e.id for e in stored if e.aggregate_id in ours]


def test_a_wake_up_reads_in_stream_order_what_commits_out_of_id_order(
        woken: Woken) -> None:
    """A transaction that took ids before another's commit is read before it, once it
    commits; the key learnt at the end is the last event in stream order (not the
    greatest id)."""
    reader, writer, other = woken
    end = reader.read_page_parked(0, "p")[0].end
    with writer.transaction() as tx:
        first = tx.append([ev(1)])[0]
        middle = other.append([ev(2)])[0]  # commits first, behind the open one
        page, _ = reader.read_page_parked(end, "p")
        assert page.events == [] and page.end == end  # held back by the horizon
        last = tx.append([ev(3)])[0]
    assert first.id < middle.id < last.id
    page, _ = reader.read_page_parked(end, "p")
    assert [e.id for e in page.events] == [first.id, last.id, middle.id]
    assert page.end == middle.id
    newer = writer.append([ev(4)])[0]
    page, _ = reader.read_page_parked(page.end, "p")
    assert [e.id for e in page.events] == [newer.id]


def test_a_wake_up_finds_an_event_skipped_by_hand_before_it_was_read(woken: Woken) -> None:
    from esctl_lib.processing.parking import skip_event

    reader, writer, _ = woken
    end = reader.read_page_parked(0, "p", types=["wanted"])[0].end
    a, b = (writer.append([typed(kind)])[0] for kind in ("wanted", "other"))
    page, _ = reader.read_page_parked(end, "p", types=["wanted"])
    c, d = (writer.append([typed("wanted")])[0] for _ in range(2))
    skip_event(writer, "p", d.id)
    page, parked = reader.read_page_parked(page.end, "p", types=["wanted"])
    assert [e.id for e in page.events] == [c.id, d.id] and parked == {d.id: 1}
    assert a.id < b.id < c.id


def test_a_lost_connection_forgets_the_key(
        woken: Woken, admin: psycopg.Connection[Any]) -> None:
    reader, writer, _ = woken
    end = caught_up(reader)
    writer.append([ev(1)])
    end = reader.read_page_parked(end, "p")[0].end
    assert reader._key is not None
    kill_backend(admin, reader)
    stored = writer.append([ev(2)])[0]
    for _ in range(3):  # the first call may find the connection dead and say so
        try:
            page, _ = reader.read_page_parked(end, "p")
            break
        except StoreUnavailableError:
            assert reader._key is None
    assert [e.id for e in page.events] == [stored.id]
