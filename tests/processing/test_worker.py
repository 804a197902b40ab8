"""The worker loop: once mode, stop, push, state reports, retries, and rare-type catch-up."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from esctl_lib import Event, EventStore, ProcessingError, Transaction, handles
from esctl_lib.processing import (
    ConstantRetry,
    ExponentialRetry,
    NoRetry,
    Projector,
    process_available,
    run_processor,
    wait_for,
)
from tests.backends import StoreSpec
from tests.processing.events import ProcItemAdded, ProcRareThing
from tests.processing.helpers import (
    ItemCounts,
    RareCounter,
    add_filler,
    add_items,
    add_one,
    counts,
    new_id,
)

RARE_CATCH_UP = {"memory": 20_000, "sqlite": 200_000, "postgres": 200_000}


def start(
    processor: Any, store: EventStore, **kwargs: Any
) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_processor, args=(processor, store), kwargs={"stop": stop, **kwargs},
        daemon=True,
    )
    thread.start()
    return thread, stop


def stop_and_join(thread: threading.Thread, stop: threading.Event) -> None:
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()


class FailsTimes(ItemCounts):
    """Fails the first ``times`` attempts at one event, then succeeds."""

    def __init__(self, event_id: int, times: int, on_fail: Callable[[], None] = lambda: None):
        self.remaining = times
        self.on_fail = on_fail
        super().__init__(fail_when=self._should_fail(event_id))

    def _should_fail(self, event_id: int) -> Callable[[Event], bool]:
        def check(event: Event) -> bool:
            if event.id == event_id and self.remaining > 0:
                self.remaining -= 1
                self.on_fail()
                return True
            return False

        return check


def test_once_mode_processes_up_to_the_head_and_returns(store: EventStore) -> None:
    add_items(store, 3)
    run_processor(ItemCounts(), store, stop=threading.Event(), once=True)
    assert store.get_tracker("proc_item_counts") == 3


class Chaser(Projector):
    """Appends one more event while handling the first: it lies past the head of the run."""

    name = "proc_chaser"

    def __init__(self) -> None:
        self.seen: list[int] = []

    @handles(ProcItemAdded)
    def _added(self, event: Event, tx: Transaction) -> None:
        self.seen.append(event.id or 0)
        if event.id == 1:
            tx.append([ProcItemAdded(aggregate_id=new_id())])


def test_once_mode_does_not_chase_events_appended_after_it_started(store: EventStore) -> None:
    add_items(store, 2)
    chaser = Chaser()
    run_processor(chaser, store, stop=threading.Event(), once=True)
    assert chaser.seen == [1, 2]


def test_process_available_returns_how_many_events_it_handled(store: EventStore) -> None:
    add_items(store, 4)
    assert process_available(ItemCounts(), store) == 4


def test_an_idle_worker_returns_soon_after_stop_is_set(store: EventStore) -> None:
    idle = threading.Event()
    thread, stop = start(ItemCounts(), store,
                         on_state=lambda state, pos, err: idle.set() if state == "idle" else None)
    assert idle.wait(10)
    stop_and_join(thread, stop)


def test_a_following_worker_handles_events_appended_later(store_spec: StoreSpec) -> None:
    store = store_spec.opened[0]
    thread, stop = start(ItemCounts(), store_spec.open())
    try:
        event = add_one(store, n=1)
        assert wait_for(store, "proc_item_counts", event.id or 0, timeout=10)
    finally:
        stop_and_join(thread, stop)


def test_a_stop_during_a_batch_takes_effect_once_that_batch_commits(store: EventStore) -> None:
    add_items(store, 10)
    stop = threading.Event()

    class Stopper(ItemCounts):
        batch_size = 4

    stopper = Stopper(fail_when=lambda event: stop.set() or False)
    run_processor(stopper, store, stop=stop)
    assert (store.get_tracker(Stopper.name), stopper.seen) == (4, [1, 2, 3, 4])


def test_state_reports_go_running_idle_then_stopped(store: EventStore) -> None:
    add_items(store, 2)
    states: list[str] = []
    run_processor(ItemCounts(), store, stop=threading.Event(), once=True,
                  on_state=lambda state, pos, err: states.append(state))
    assert states == ["running", "running", "stopped"]


def test_a_failing_event_is_retried_after_the_policys_sleep(store: EventStore) -> None:
    agg = new_id()
    add_items(store, 3, aggregate=agg)
    slept: list[float] = []
    run_processor(FailsTimes(event_id=2, times=3), store, stop=threading.Event(), once=True,
                  retry=ExponentialRetry(sleep=slept.append))
    assert (slept, counts(store)) == ([1, 2, 4], {agg: 3})


def test_on_error_gets_the_processing_error_and_the_processor_name(store: EventStore) -> None:
    add_items(store, 1)
    errors: list[tuple[type, str, int | None]] = []
    run_processor(
        FailsTimes(event_id=1, times=1), store, stop=threading.Event(), once=True,
        retry=ConstantRetry(sleep=lambda s: None),
        on_error=lambda e, name: errors.append((type(e), name, getattr(e, "event_id", None))),
    )
    assert errors == [(ProcessingError, "fails_times", 1)]


def test_a_failure_is_reported_as_the_failing_state_with_the_error(store: EventStore) -> None:
    add_items(store, 1)
    reports: list[tuple[str, str | None]] = []
    run_processor(FailsTimes(event_id=1, times=1), store, stop=threading.Event(), once=True,
                  retry=ConstantRetry(sleep=lambda s: None),
                  on_state=lambda state, pos, err: reports.append((state, err)))
    assert reports[1][0] == "failing" and "cannot count event 1" in (reports[1][1] or "")


def test_with_no_retry_the_worker_raises_the_processing_error(store: EventStore) -> None:
    add_items(store, 2)
    with pytest.raises(ProcessingError, match="cannot count event 2"):
        run_processor(FailsTimes(event_id=2, times=1), store, stop=threading.Event(),
                      retry=NoRetry())


def test_a_stop_during_the_retry_sleep_ends_the_worker(store: EventStore) -> None:
    add_items(store, 1)
    failing = threading.Event()
    thread, stop = start(FailsTimes(event_id=1, times=1000, on_fail=failing.set), store,
                         retry=ConstantRetry(interval=3600))
    assert failing.wait(10)
    stop_and_join(thread, stop)


@pytest.mark.slow
def test_a_rare_type_catches_up_over_many_other_events_in_a_handful_of_reads(
    store_spec: StoreSpec,
) -> None:
    store = store_spec.opened[0]
    add_one(store, ProcRareThing)
    add_filler(store, store_spec.backend, RARE_CATCH_UP[store_spec.backend])
    add_one(store, ProcRareThing)
    reads = count_reads(store)
    assert process_available(RareCounter(), store) == 2
    assert len(reads) <= 3


def test_a_rare_type_processor_records_how_far_it_scanned(store_spec: StoreSpec) -> None:
    store = store_spec.opened[0]
    add_one(store, ProcRareThing)
    add_filler(store, store_spec.backend, 5_000)
    process_available(RareCounter(), store)
    reads = count_reads(store)
    process_available(RareCounter(), store)
    assert [r[0] for r in reads] == [store.latest_position()]


def count_reads(store: EventStore) -> list[tuple[int, Any]]:
    """Record every read_page call (position, types) on this store handle."""
    calls: list[tuple[int, Any]] = []
    real = store.read_page

    def counting(position: int, **kwargs: Any) -> Any:
        calls.append((position, kwargs.get("types")))
        return real(position, **kwargs)

    store.read_page = counting  # type: ignore[method-assign]
    return calls


def test_an_idle_worker_reports_idle_again_every_idle_timeout(store: EventStore) -> None:
    idle_reports = threading.Semaphore(0)

    def on_state(state: str, position: int, error: str | None) -> None:
        if state == "idle":
            idle_reports.release()

    thread, stop = start(ItemCounts(), store, on_state=on_state, idle_timeout=0.01)
    assert all(idle_reports.acquire(timeout=10) for _ in range(3))
    stop_and_join(thread, stop)
