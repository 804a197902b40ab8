"""wait_for: read-your-writes against a processor's tracker, in stream order."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from esctl_lib import EventStore
from esctl_lib.processing import has_reached, process_available, run_processor, wait_for
from tests.backends import POSTGRES_DSN, StoreSpec, drop_schema, require_postgres
from tests.processing.events import ProcItemAdded, ProcItemRemoved
from tests.processing.helpers import ItemCounts, RareCounter, add_items, add_one, new_id


def test_position_zero_is_always_reached(store: EventStore) -> None:
    assert has_reached(store, "proc_item_counts", 0)


def test_an_unprocessed_position_is_not_reached(store: EventStore) -> None:
    add_items(store, 1)
    assert not has_reached(store, "proc_item_counts", 1)


def test_a_processed_position_is_reached(store: EventStore) -> None:
    add_items(store, 2)
    process_available(ItemCounts(), store)
    assert has_reached(store, "proc_item_counts", 2)


def test_wait_for_gives_up_after_the_timeout(store: EventStore) -> None:
    add_items(store, 1)
    assert not wait_for(store, "proc_item_counts", 1, timeout=0.05)


def test_wait_for_returns_once_a_running_worker_has_processed_the_event(
    store_spec: StoreSpec,
) -> None:
    store = store_spec.opened[0]
    stop = threading.Event()
    worker = threading.Thread(target=run_processor, args=(ItemCounts(), store_spec.open()),
                              kwargs={"stop": stop}, daemon=True)
    worker.start()
    try:
        written = add_items(store, 3)
        assert wait_for(store, "proc_item_counts", written[-1].id or 0, timeout=10)
    finally:
        stop.set()
        worker.join(timeout=10)


def test_a_filtered_processor_reaches_events_it_does_not_handle_once_it_scanned_them(
    store: EventStore,
) -> None:
    add_one(store, ProcItemRemoved)
    process_available(RareCounter(), store)
    assert has_reached(store, "proc_rare_counter", 1)


# -- PostgreSQL: stream order is (transaction, id), not id order ---------------------------


@pytest.fixture
def pg_spec() -> Iterator[StoreSpec]:
    require_postgres()
    spec = StoreSpec("postgres", POSTGRES_DSN, schema=f"t_{uuid.uuid4().hex[:12]}")
    spec.open().setup()
    try:
        yield spec
    finally:
        spec.close_all()
        drop_schema(spec.schema or "")


@pytest.fixture
def pg_store(pg_spec: StoreSpec) -> EventStore:
    return pg_spec.opened[0]


def commit_out_of_id_order(store: EventStore) -> tuple[int, int]:
    """Two events where the one with the higher id comes first in the stream."""
    with store.transaction() as early:
        early.will_append()  # it appends after its first write
        early.reset_tracker("proc_xid_holder", 0)  # takes a transaction id now
        with store.transaction() as late:
            first_id = late.append([ProcItemAdded(aggregate_id=new_id())])[0].id
        second_id = early.append([ProcItemAdded(aggregate_id=new_id())])[0].id
    assert first_id is not None and second_id is not None and first_id < second_id
    return first_id, second_id


def test_on_postgresql_the_worker_follows_stream_order(pg_store: EventStore) -> None:
    low, high = commit_out_of_id_order(pg_store)
    counter = ItemCounts()
    process_available(counter, pg_store)
    assert counter.seen == [high, low]


def test_on_postgresql_a_tracker_past_a_higher_id_has_not_reached_a_later_lower_id(
    pg_store: EventStore,
) -> None:
    low, high = commit_out_of_id_order(pg_store)
    pg_store.reset_tracker("proc_item_counts", high)
    assert (has_reached(pg_store, "proc_item_counts", high),
            has_reached(pg_store, "proc_item_counts", low)) == (True, False)


def test_on_postgresql_an_event_behind_an_open_transaction_is_not_reached(
    pg_spec: StoreSpec,
) -> None:
    reader = pg_spec.open(own_writes_wait=0)  # do not wait for this process's own writes
    writer = pg_spec.opened[0]
    with writer.transaction() as holder:
        holder.will_append()  # it may append: readers wait for it once it has written
        holder.reset_tracker("proc_xid_holder", 0)  # an open writing transaction
        event = writer.append([ProcItemAdded(aggregate_id=new_id())])[0]
        process_available(ItemCounts(), reader)
        assert not has_reached(reader, "proc_item_counts", event.id or 0)
