"""Skipping an event by hand (it is parked, and the processor goes past it), and retrying
parked events in their turn."""

from __future__ import annotations

import threading

import pytest

from esctl_lib import EventStore, InvalidEventError, retry_parked_events, skip_event
from esctl_lib.processing import (
    ConstantRetry,
    list_parked,
    process_available,
    process_parked,
    run_processor,
)
from esctl_lib.testing import eventually
from tests.backends import StoreSpec
from tests.processing.helpers import ItemCounts, add_items, counts, new_id

NAME = ItemCounts.name


class Poisoned(ItemCounts):
    name = NAME

    def __init__(self, *poison: int) -> None:
        self.poison = set(poison)
        super().__init__(fail_when=lambda event: event.id in self.poison)


def test_a_skipped_event_is_parked_with_its_reason(store: EventStore) -> None:
    add_items(store, 2)
    skip_event(store, NAME, 2, reason="bad data")
    [parked] = list_parked(store)
    assert (parked.event_id, parked.error, parked.queued) == (2, "skipped by hand: bad data",
                                                             False)


def test_a_processor_goes_past_an_event_skipped_before_it_runs(store: EventStore) -> None:
    agg = new_id()
    add_items(store, 3, aggregate=agg)
    skip_event(store, NAME, 2)
    processor = ItemCounts()
    process_available(processor, store)
    assert (processor.seen, counts(store), store.get_tracker(NAME)) == ([1, 3], {agg: 2}, 3)


def test_a_running_worker_failing_on_an_event_moves_on_once_it_is_skipped(
    store_spec: StoreSpec,
) -> None:
    store = store_spec.opened[0]
    agg = new_id()
    add_items(store, 3, aggregate=agg)
    stop = threading.Event()
    thread = threading.Thread(
        target=run_processor, args=(Poisoned(2), store_spec.open()),
        kwargs={"stop": stop, "idle_timeout": 0.05,
                "retry": ConstantRetry(interval=0.05)}, daemon=True)
    thread.start()
    try:
        eventually(lambda: store.get_tracker(NAME) == 1, timeout=20, what="the prefix")
        skip_event(store, NAME, 2, reason="poison")
        eventually(lambda: store.get_tracker(NAME) == 3, timeout=20, what="going past 2")
    finally:
        stop.set()
        thread.join(timeout=20)
    assert counts(store) == {agg: 2}
    assert [p.event_id for p in list_parked(store)] == [2]


def test_skipping_an_event_the_processor_has_processed_is_refused(store: EventStore) -> None:
    add_items(store, 2)
    process_available(ItemCounts(), store)
    with pytest.raises(InvalidEventError, match="processed event 1 already"):
        skip_event(store, NAME, 1)


def test_skipping_an_event_that_is_not_stored_is_refused(store: EventStore) -> None:
    add_items(store, 1)
    with pytest.raises(InvalidEventError, match="no event 9"):
        skip_event(store, NAME, 9)


def test_a_skipped_event_queued_again_is_processed_in_its_turn_once(
    store: EventStore,
) -> None:
    agg = new_id()
    add_items(store, 3, aggregate=agg)
    skip_event(store, NAME, 2)
    assert retry_parked_events(store, NAME) == 1
    processor = ItemCounts()
    assert process_parked(processor, store).succeeded == 0  # not reached yet: left alone
    process_available(processor, store)
    assert (processor.seen, counts(store), list_parked(store)) == ([1, 2, 3], {agg: 3}, [])


def test_retried_parked_events_are_applied_in_their_original_order(store: EventStore) -> None:
    add_items(store, 4)
    processor = Poisoned(3, 2)
    run_processor(processor, store, stop=threading.Event(), once=True,
                  retry=ConstantRetry(max_attempts=1))
    processor.poison.clear()
    processor.seen.clear()
    retry_parked_events(store, NAME)
    assert process_parked(processor, store).succeeded == 2
    assert processor.seen == [2, 3]
