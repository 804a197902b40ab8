"""Projectors: owned tables, and rows that commit with the tracker, batch by batch."""

from __future__ import annotations

import pytest

from esctl_lib import Event, EventStore, ProcessingError, handles, open_tables
from esctl_lib.processing import (
    BatchTransaction,
    Projector,
    Tables,
    process_available,
    replay,
)
from tests.backends import StoreSpec
from tests.processing.events import ProcItemAdded
from tests.processing.helpers import ItemCounts, add_items, counts, new_id


class SmallBatches(ItemCounts):
    batch_size = 5


def fail_on(event_id: int) -> SmallBatches:
    return SmallBatches(fail_when=lambda event: event.id == event_id)


def test_setup_creates_the_declared_tables(store: EventStore) -> None:
    ItemCounts().setup(store)
    assert counts(store) == {}


def test_setup_twice_is_harmless(store: EventStore) -> None:
    ItemCounts().setup(store)
    ItemCounts().setup(store)
    assert counts(store) == {}


def test_processing_writes_rows_and_moves_the_tracker(store: EventStore) -> None:
    agg = new_id()
    add_items(store, 3, aggregate=agg)
    process_available(ItemCounts(), store)
    assert (counts(store), store.get_tracker("proc_item_counts")) == ({agg: 3}, 3)


def test_an_error_on_the_third_event_keeps_the_two_before_it(store: EventStore) -> None:
    agg = new_id()
    add_items(store, 5, aggregate=agg)
    with pytest.raises(ProcessingError):
        process_available(fail_on(3), store)
    assert counts(store) == {agg: 2}


def test_an_error_on_the_third_event_leaves_the_tracker_just_before_it(
    store: EventStore,
) -> None:
    add_items(store, 5)
    with pytest.raises(ProcessingError):
        process_available(fail_on(3), store)
    assert store.get_tracker(SmallBatches.name) == 2


def test_earlier_batches_stay_committed_when_a_later_one_fails(store: EventStore) -> None:
    agg = new_id()
    add_items(store, 10, aggregate=agg)
    with pytest.raises(ProcessingError):
        process_available(fail_on(8), store)
    assert (counts(store), store.get_tracker(SmallBatches.name)) == ({agg: 7}, 7)


def test_after_a_failed_batch_a_restart_applies_each_event_exactly_once(
    store_spec: StoreSpec,
) -> None:
    store = store_spec.opened[0]
    agg = new_id()
    add_items(store, 12, aggregate=agg)
    with pytest.raises(ProcessingError):
        process_available(fail_on(8), store)
    restarted = SmallBatches()
    process_available(restarted, store_spec.open())
    assert (counts(store), restarted.seen) == ({agg: 12}, list(range(8, 13)))


def test_reset_empties_the_tables_and_puts_the_tracker_at_zero(store: EventStore) -> None:
    add_items(store, 3)
    projector = ItemCounts()
    process_available(projector, store)
    projector.reset(store)
    assert (counts(store), store.get_tracker("proc_item_counts")) == ({}, 0)


def test_replay_rebuilds_the_projection_from_scratch(store: EventStore) -> None:
    agg = new_id()
    add_items(store, 4, aggregate=agg)
    projector = ItemCounts()
    process_available(projector, store)
    with store.transaction() as tx:
        tx.execute("UPDATE proc_item_counts SET n = 99")
    replay(projector, store)
    assert counts(store) == {agg: 4}


def test_replay_reports_progress_up_to_the_total(store: EventStore) -> None:
    add_items(store, 12)
    seen: list[tuple[int, int]] = []
    replay(SmallBatches(), store, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 12), (5, 12), (10, 12), (12, 12)]


def test_replay_returns_how_many_events_were_handled(store: EventStore) -> None:
    add_items(store, 7)
    assert replay(ItemCounts(), store) == 7


class PerDialect(Projector):
    name = "proc_per_dialect"
    tables = {
        "proc_per_dialect": {
            "sqlite": [
                "CREATE TABLE IF NOT EXISTS proc_per_dialect (id INTEGER PRIMARY KEY, v TEXT)",
                "CREATE INDEX IF NOT EXISTS proc_per_dialect_v ON proc_per_dialect (v)",
            ],
            "postgresql": [
                "CREATE TABLE IF NOT EXISTS proc_per_dialect (id BIGINT PRIMARY KEY, v TEXT)",
                "CREATE INDEX IF NOT EXISTS proc_per_dialect_v ON proc_per_dialect (v)",
            ],
        }
    }

    @handles(ProcItemAdded)
    def _added(self, event: Event, tx: BatchTransaction) -> None:
        tx.insert("proc_per_dialect", {"id": event.id, "v": str(event.body["n"])})


def test_per_dialect_ddl_creates_the_table_on_every_backend(store: EventStore) -> None:
    add_items(store, 2)
    process_available(PerDialect(), store)
    with open_tables(store) as tx:
        assert tx.select("proc_per_dialect", order_by=("id",)) == [
            {"id": 1, "v": "0"}, {"id": 2, "v": "1"},
        ]


class FailsLate(Projector):
    """Queues an insert that breaks a constraint, then a later event's handler reads."""

    name = "proc_fails_late"
    tables = {"proc_fails_late": "CREATE TABLE IF NOT EXISTS proc_fails_late "
                                 "(k TEXT PRIMARY KEY)"}

    @handles(ProcItemAdded)
    def _added(self, event: Event, tx: BatchTransaction) -> None:
        if event.body["n"] in (0, 1):
            tx.insert("proc_fails_late", {"k": "same"})  # the 2nd one violates the key
        else:
            tx.fetchall("SELECT k FROM proc_fails_late")


def test_a_queued_write_that_fails_is_blamed_on_its_own_event(store: EventStore) -> None:
    stored = add_items(store, 4)
    with pytest.raises(ProcessingError) as caught:
        process_available(FailsLate(), store)
    assert caught.value.event_id == stored[1].id


def test_a_batch_transaction_used_as_a_context_manager_sends_its_queue(store: EventStore) -> None:
    with store.transaction() as raw, BatchTransaction(raw) as tx:
        tx.execute("CREATE TABLE IF NOT EXISTS proc_queued (k TEXT PRIMARY KEY)")
        tx.insert("proc_queued", {"k": "a"})
        tx.upsert("proc_queued", {"k": "b"}, key=("k",))
    with open_tables(store) as tables:
        assert tables.select("proc_queued", order_by=("k",)) == [{"k": "a"}, {"k": "b"}]


def test_tables_over_a_batch_keep_the_order_of_queued_writes(store: EventStore) -> None:
    with store.transaction() as raw:
        batch = BatchTransaction(raw)
        batch.execute("CREATE TABLE IF NOT EXISTS proc_ordered (k TEXT PRIMARY KEY, v TEXT)")
        batch.insert("proc_ordered", {"k": "a", "v": "1"})
        assert Tables(batch).select("proc_ordered") == [{"k": "a", "v": "1"}]


def test_a_handler_using_defer_works_through_handle_on_a_store_transaction(
    store: EventStore,
) -> None:
    add_items(store, 1)
    event = store.read_after(0)[0]
    projector = ItemCounts()
    projector.setup(store)
    with store.transaction() as tx:
        projector.handle(event, tx)
    with open_tables(store) as tables:
        assert len(tables.select("proc_item_counts")) == 1
