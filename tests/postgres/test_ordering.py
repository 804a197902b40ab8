"""The stream is ordered by (writing transaction, id) and read below the in-progress horizon."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import psycopg
import pytest

from esctl_lib import Event, TrackerError
from esctl_lib.stores.postgres import PostgresStore
from esctl_lib.stores.postgres.horizon import append_lock_key
from tests.postgres.conftest import PgSpec


def ev(n: int, type_: str = "pg_thing") -> Event:
    return Event(aggregate_id=str(uuid.uuid4()), type=type_, body={"n": n})


def out_of_order(pg: PgSpec) -> tuple[PostgresStore, list[int]]:
    """Ids 1 and 2 committed so that the stream order is 2, 1; then 3. Returns a reader."""
    slow, fast = pg.open(), pg.open()
    with slow.transaction() as tx:
        tx.will_append()  # it appends later: it must say so before its first write
        tx.set_tracker("pg_start_xid", 0)  # the transaction now has its id
        first = fast.append([ev(1)])[0]
        late = tx.append([ev(2)])[0]
    last = fast.append([ev(3)])[0]
    assert (first.id, late.id, last.id) == (1, 2, 3)
    return pg.open(), [2, 1, 3]  # a store of this process: it reads its process's writes


def test_an_event_committed_behind_a_reader_is_read_in_transaction_order(pg: PgSpec) -> None:
    reader, order = out_of_order(pg)
    assert [e.id for e in reader.read_after(0)] == order


def test_a_reader_sees_nothing_past_a_transaction_still_in_progress(pg: PgSpec) -> None:
    slow, fast, reader = pg.open(), pg.open(), pg.open(own_writes_wait=0.0)
    with slow.transaction() as tx:
        tx.will_append()
        tx.set_tracker("pg_start_xid", 0)
        fast.append([ev(1)])
        assert reader.read_after(0) == []
        assert reader.latest_position() == 0
        assert reader.count() == 0
        tx.append([ev(2)])
    assert [e.id for e in pg.open().read_after(0)] == [2, 1]


def test_resuming_after_each_page_end_never_skips(pg: PgSpec) -> None:
    reader, order = out_of_order(pg)
    seen, position = [], 0
    while True:
        page = reader.read_page(position, limit=1)
        if not page.events:
            break
        seen.extend(e.id for e in page.events)
        position = page.end
    assert seen == order


def test_a_filtered_reader_resumes_after_each_page_end_in_stream_order(pg: PgSpec) -> None:
    reader, order = out_of_order(pg)
    for read in (reader.read_page, lambda p, **kw: reader.read_page_parked(p, "pg_proc", **kw)[0]):
        seen, position = [], 0
        while True:
            page = read(position, types=["pg_thing"], limit=1)
            if not page.events:
                break
            seen.extend(e.id for e in page.events)
            position = page.end
        assert seen == order
        assert position == 3


def test_a_filtered_page_ends_at_a_head_whose_id_is_below_the_position(pg: PgSpec) -> None:
    """The head's key orders it after the position, though its id is lower: a page of no
    match ends there (at id 1, after id 2 in stream order), never back at the position."""
    slow, fast = pg.open(), pg.open()
    with slow.transaction() as tx:
        tx.will_append()
        tx.set_tracker("pg_start_xid", 0)
        fast.append([ev(1)])
        tx.append([ev(2)])
    reader = pg.open()
    for page in (reader.read_page(2, types=["pg_other"]),
                 reader.read_page_parked(2, "pg_proc", types=["pg_other"])[0]):
        assert (page.events, page.end) == ([], 1)
    for page in (reader.read_page(1, types=["pg_other"]),  # at the head already
                 reader.read_page_parked(1, "pg_proc", types=["pg_other"])[0]):
        assert (page.events, page.end) == ([], 1)
    assert [e.id for e in reader.read_page(2, types=["pg_thing"]).events] == [1]


def test_latest_position_and_count_follow_stream_order(pg: PgSpec) -> None:
    reader, _ = out_of_order(pg)
    assert reader.latest_position() == 3
    assert reader.count(after=2) == 2
    assert reader.count(after=1) == 1


def test_until_is_inclusive_in_stream_order(pg: PgSpec) -> None:
    reader, _ = out_of_order(pg)
    assert [e.id for e in reader.iter_range(0, 1)] == [2, 1]
    assert [e.id for e in reader.iter_range(2, 1)] == [1]


def test_a_tracker_compares_positions_in_stream_order(pg: PgSpec) -> None:
    reader, _ = out_of_order(pg)
    reader.set_tracker("pg_proc", 2)
    reader.set_tracker("pg_proc", 1)
    with pytest.raises(TrackerError):
        reader.set_tracker("pg_proc", 2)
    assert reader.get_tracker("pg_proc") == 1


def test_a_position_that_is_no_event_id_resumes_after_the_greatest_id_below_it(
    pg: PgSpec,
) -> None:
    store = pg.open()
    store.append([ev(1)])
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.append([ev(2)])  # takes id 2, then rolls back
        raise RuntimeError("roll back")
    store.append([ev(3)])
    assert [e.id for e in store.read_after(2)] == [3]


def test_a_store_reads_its_own_append_once_a_transaction_elsewhere_ends(
    pg: PgSpec, admin: psycopg.Connection[Any]
) -> None:
    store = pg.open(own_writes_wait=30.0)
    blocker = psycopg.connect(pg.url)
    # A transaction that may still append (it holds the append lock) and has an id: it
    # holds readers back until it ends (``horizon.py``).
    blocker.execute("SELECT pg_advisory_xact_lock_shared(%s)", (append_lock_key(pg.schema),))
    blocker.execute("SELECT pg_current_xact_id()")
    store.append([ev(1)])
    ending = threading.Event()

    def end() -> None:
        ending.set()  # before the commit: the read cannot see the event earlier
        blocker.commit()

    timer = threading.Timer(0.2, end)
    timer.start()
    try:
        assert [e.body["n"] for e in store.read_after(0)] == [1]
        assert ending.is_set()  # the read waited for the transaction to end
    finally:
        timer.join(30)
        blocker.close()


def test_the_reader_horizon_names_the_transaction_holding_readers_back(pg: PgSpec) -> None:
    store = pg.open(own_writes_wait=0.0)
    with pg.open().transaction() as blocker:  # it may append, and has written: it blocks
        blocker.will_append()
        blocker.set_tracker("pg_blocker", 0)
        store.append([ev(1)])
        horizon = store.reader_horizon()
        assert horizon.pending == 1
        assert horizon.pid is not None and horizon.age_seconds is not None
