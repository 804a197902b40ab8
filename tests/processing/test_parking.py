"""Parking: an event that keeps failing is set aside after max_attempts, and can be retried."""

from __future__ import annotations

import itertools
import threading

import pytest

from esctl_lib import Event, EventStore, Transaction
from esctl_lib.processing import (
    ConstantRetry,
    NoRetry,
    ParkedEvent,
    list_parked,
    process_parked,
    retry_parked,
    run_processor,
    wait_for,
    worker,
)
from esctl_lib.testing import eventually
from tests.backends import StoreSpec
from tests.processing.helpers import ItemCounts, add_items, add_one, counts, new_id


class Poisoned(ItemCounts):
    """Fails on every event whose id is in ``poison``."""

    name = "proc_poisoned"

    def __init__(self, *poison: int) -> None:
        self.poison = set(poison)
        super().__init__(fail_when=lambda event: event.id in self.poison)


def run_parking(processor: ItemCounts, store: EventStore, attempts: int = 3) -> list[float]:
    """Run once with max_attempts and a clock ticking 100, 101, ... per failure; returns sleeps."""
    slept: list[float] = []
    clock = itertools.count(100)
    run_processor(processor, store, stop=threading.Event(), once=True,
                  retry=ConstantRetry(max_attempts=attempts, sleep=slept.append,
                                      clock=lambda: float(next(clock))))
    return slept


def test_an_event_failing_max_attempts_times_is_parked_and_skipped(store: EventStore) -> None:
    agg = new_id()
    add_items(store, 3, aggregate=agg)
    run_parking(Poisoned(2), store)
    assert (counts(store), store.get_tracker("proc_poisoned")) == ({agg: 2}, 3)


def test_the_processor_sleeps_between_attempts_but_not_after_the_last(store: EventStore) -> None:
    add_items(store, 1)
    assert run_parking(Poisoned(1), store, attempts=3) == [1.0, 1.0]


def test_the_parked_row_records_event_error_attempts_and_times(store: EventStore) -> None:
    stored = add_items(store, 2)
    run_parking(Poisoned(2), store)
    assert list_parked(store) == [
        ParkedEvent(
            processor="proc_poisoned", event_id=2, event_uuid=stored[1].uuid,
            event_type="proc_item_added",
            error=f"processor 'proc_poisoned' failed on event 2 (proc_item_added, aggregate "
            f"{stored[1].aggregate_id}, uuid {stored[1].uuid}): ValueError: cannot count event 2",
            attempts=3, first_failed_at=100.0, last_failed_at=102.0,
        )
    ]


def test_parking_with_no_retry_parks_at_the_first_failure(store: EventStore) -> None:
    add_items(store, 2)
    run_processor(Poisoned(1), store, stop=threading.Event(), once=True,
                  retry=NoRetry(max_attempts=1))
    assert [p.event_id for p in list_parked(store)] == [1]


def test_a_processors_max_attempts_overrides_the_policys(store: EventStore) -> None:
    class Impatient(Poisoned):
        max_attempts = 1

    add_items(store, 1)
    run_processor(Impatient(1), store, stop=threading.Event(), once=True, retry=NoRetry())
    assert [p.processor for p in list_parked(store)] == ["impatient"]


def test_parked_events_can_be_listed_for_one_processor(store: EventStore) -> None:
    class Other(Poisoned):
        name = "proc_other"

    add_items(store, 2)
    run_parking(Poisoned(1), store)
    run_parking(Other(2), store)
    assert [(p.processor, p.event_id) for p in list_parked(store, "proc_other")] == [
        ("proc_other", 2),
    ]


def test_retry_parked_queues_the_events_and_says_how_many(store: EventStore) -> None:
    add_items(store, 3)
    run_parking(Poisoned(1, 3), store)
    assert retry_parked(store, "proc_poisoned") == 2
    assert [p.queued for p in list_parked(store)] == [True, True]


def test_retry_parked_can_queue_one_event(store: EventStore) -> None:
    add_items(store, 3)
    run_parking(Poisoned(1, 3), store)
    retry_parked(store, "proc_poisoned", event_id=3)
    assert [(p.event_id, p.queued) for p in list_parked(store)] == [(1, False), (3, True)]


def test_a_queued_event_that_now_works_is_applied_and_unparked(store: EventStore) -> None:
    agg = new_id()
    add_items(store, 3, aggregate=agg)
    processor = Poisoned(2)
    run_parking(processor, store)
    retry_parked(store, "proc_poisoned")
    processor.poison.clear()
    assert process_parked(processor, store).succeeded == 1
    assert (counts(store), list_parked(store)) == ({agg: 3}, [])


def test_a_queued_event_that_fails_again_stays_parked(store: EventStore) -> None:
    add_items(store, 1)
    processor = Poisoned(1)
    run_parking(processor, store)
    retry_parked(store, "proc_poisoned")
    process_parked(processor, store, clock=lambda: 500.0)
    parked = list_parked(store)[0]
    assert (parked.attempts, parked.last_failed_at, parked.queued) == (1, 500.0, False)


def test_events_that_are_not_queued_are_left_alone(store: EventStore) -> None:
    add_items(store, 1)
    processor = Poisoned(1)
    run_parking(processor, store)
    processor.poison.clear()
    assert process_parked(processor, store).succeeded == 0


def test_a_running_worker_retries_queued_events_when_idle(
    store_spec: StoreSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "PARKED_CHECK_INTERVAL", 0.0)
    store = store_spec.opened[0]
    agg = new_id()
    add_items(store, 2, aggregate=agg)
    processor = Poisoned(1)
    run_parking(processor, store)
    processor.poison.clear()
    stop = threading.Event()
    thread = threading.Thread(target=run_processor, args=(processor, store_spec.open()),
                              kwargs={"stop": stop, "idle_timeout": 0.05}, daemon=True)
    thread.start()
    try:
        retry_parked(store, "proc_poisoned")
        eventually(lambda: not list_parked(store), timeout=10)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert counts(store) == {agg: 2}


def test_resetting_a_processor_clears_its_parked_events(store: EventStore) -> None:
    add_items(store, 1)
    processor = Poisoned(1)
    run_parking(processor, store)
    processor.reset(store)
    assert list_parked(store) == []


def test_a_parked_reactor_event_emits_when_retried(store: EventStore) -> None:
    from tests.processing.test_reactor import Noticer

    class Flaky(Noticer):
        name = "proc_flaky_noticer"
        broken = True

        def _added(self, event: Event, tx: Transaction) -> None:
            if self.broken:
                raise RuntimeError("mail server down")
            super()._added(event, tx)

    add_one(store)
    flaky = Flaky()
    run_processor(flaky, store, stop=threading.Event(), once=True,
                  retry=NoRetry(max_attempts=1))
    flaky.broken = False
    retry_parked(store, "proc_flaky_noticer")
    process_parked(flaky, store)
    assert [e.type for e in store.read_after(0)].count("proc_item_noticed") == 2


def test_wait_for_is_not_fooled_by_a_parked_event(store: EventStore) -> None:
    add_items(store, 2)
    run_parking(Poisoned(1), store)
    assert wait_for(store, "proc_poisoned", 2, timeout=0)
