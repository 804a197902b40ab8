"""A status that tells the truth: health never turns good by itself (issue 11, item 3).

A failing processor, one that crashed before it recorded anything and one whose heartbeat
went stale while it ran stay unhealthy, with their last error, until the processor
processes successfully again; lag counts events that exist but are not readable yet.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from esctl_lib import EventStore, status_report
from esctl_lib.processing.state import (
    STALE_AFTER,
    StateRecorder,
    read_state,
    record_exit,
    record_state,
)
from esctl_lib.testing import eventually
from tests.backends import StoreSpec, backend_params
from tests.processing.helpers import ItemCounts, add_items
from tests.processing.runner_apps.apps import RunnerTick
from tests.processing.runner_apps.support import shared_backends, start_runner, stop, wait_until

NAME = ItemCounts.name
LATER = STALE_AFTER * 10


def crashing_hook(processor: object) -> None:
    """A startup hook that dies before the child records any state (as a full disk does)."""
    raise OSError(28, "No space left on device")


def problems(store: EventStore, *, after: float = 0.0) -> tuple[str, ...]:
    [row] = status_report(store, [ItemCounts()], now=time.time() + after).processors
    return row.problems


def test_a_failing_processor_stays_unhealthy_after_its_heartbeat_goes_stale(
    store: EventStore,
) -> None:
    record_state(store, NAME, "failing", pid=4242, error="RuntimeError: boom")
    [row] = status_report(store, [ItemCounts()], now=time.time() + LATER).processors
    assert row.failing and not row.healthy
    assert "boom" in row.problems[0] and row.state.startswith("failing")


def test_a_heartbeat_that_went_stale_while_running_is_unhealthy(store: EventStore) -> None:
    record_state(store, NAME, "running", pid=4242, host="web-1")
    assert problems(store) == ()
    [reason] = problems(store, after=LATER)
    assert "no heartbeat" in reason and "while running" in reason and "4242" in reason


def test_the_stale_threshold_is_a_parameter(store: EventStore) -> None:
    record_state(store, NAME, "idle", pid=4242)
    [row] = status_report(store, [ItemCounts()], stale_after=0.0,
                          now=time.time() + 1).processors
    assert row.state == "idle (stale)" and row.failing


def test_an_error_recorded_while_handling_an_exception_keeps_its_traceback(
    store: EventStore,
) -> None:
    try:
        raise RuntimeError("boom in user code")
    except RuntimeError:
        record_state(store, NAME, "failing", pid=1, error="RuntimeError: boom in user code")
    state = read_state(store, NAME)
    assert state is not None and state.last_error == "RuntimeError: boom in user code"
    assert state.traceback is not None
    assert "Traceback (most recent call last)" in state.traceback
    assert "raise RuntimeError" in state.traceback


def test_a_new_instance_starting_keeps_the_previous_error_until_it_succeeds(
    store: EventStore,
) -> None:
    record_state(store, NAME, "failing", pid=4242, position=3, error="RuntimeError: boom")
    recorder = StateRecorder(store, NAME, interval=0.05)
    recorder.start("starting", position=3)
    try:
        state = read_state(store, NAME)
        assert state is not None and state.last_error == "RuntimeError: boom"
        recorder.update("running", 3, None)  # about to try the failed batch again
        recorder.update("running", 5, None)  # it committed: past the failure
        eventually(lambda: (read_state(store, NAME) or state).last_error is None, timeout=10)
    finally:
        recorder.stop()
    assert problems(store, after=LATER) == ()


def test_a_stop_after_a_failure_keeps_the_error(store: EventStore) -> None:
    recorder = StateRecorder(store, NAME, interval=0.05)
    recorder.start("starting", position=0)
    recorder.update("failing", 0, "RuntimeError: boom")
    recorder.update("stopped", 0, "RuntimeError: boom")
    recorder.stop()
    state = read_state(store, NAME)
    assert state is not None and (state.state, state.last_error) == (
        "stopped", "RuntimeError: boom")
    assert "boom" in problems(store, after=LATER)[0]


def test_a_predecessor_that_died_silently_is_recorded_by_the_next_instance(
    store: EventStore,
) -> None:
    record_state(store, NAME, "running", pid=4242, host="web-1")
    with store.transaction() as tx:
        tx.execute("UPDATE processor_state SET heartbeat_at = 0")
    recorder = StateRecorder(store, NAME, interval=0.05)
    recorder.start("starting", position=0)
    recorder.stop("starting")
    state = read_state(store, NAME)
    assert state is not None and "4242" in (state.last_error or "")
    assert "stopped heartbeating while running" in (state.last_error or "")


def test_the_runner_records_a_child_that_exited_before_recording_anything(
    store: EventStore,
) -> None:
    assert record_exit(store, NAME, pid=4242, exit_code=1, description="code 1")
    state = read_state(store, NAME)
    assert state is not None and state.state == "crashed"
    [reason] = problems(store, after=LATER)
    assert "crashed" in reason and "4242" in reason and "code 1" in reason


def test_the_runner_keeps_the_failure_a_child_recorded_itself(store: EventStore) -> None:
    record_state(store, NAME, "failing", pid=4242, error="RuntimeError: boom")
    assert not record_exit(store, NAME, pid=4242, exit_code=1, description="code 1")
    state = read_state(store, NAME)
    assert state is not None and state.last_error == "RuntimeError: boom"


def test_a_lag_limit_makes_a_lagging_processor_unhealthy(store: EventStore) -> None:
    add_items(store, 3)
    [row] = status_report(store, [ItemCounts()], max_lag=2).processors
    assert row.lag_events == 3
    assert row.problems == ("lag 3 events exceeds 2",)
    [row] = status_report(store, [ItemCounts()], max_lag=3).processors
    assert row.healthy


@shared_backends
def test_a_child_that_crashes_before_recording_its_state_shows_as_crashed(
    store_spec: StoreSpec, tmp_path: Path
) -> None:
    store = store_spec.opened[0]
    runner = start_runner(store_spec, tmp_path, "TickCounter",
                          hook=f"{__name__}:crashing_hook")
    try:
        state = wait_until(lambda: read_state(store, "tick_counter"), what="a state row",
                           proc=runner, timeout=30)
    finally:
        stop(runner)
    assert state.state == "crashed"
    assert state.problem() is not None and "exited with code 1" in (state.last_error or "")


@pytest.mark.parametrize("store_spec", backend_params(["postgres"]), indirect=True)
def test_lag_counts_events_waiting_behind_an_open_transaction(
    store_spec: StoreSpec,
) -> None:
    store = store_spec.opened[0]
    with store.transaction() as other:  # open, may append and has written: readers wait
        other.will_append()
        other.set_tracker("unrelated", 0)
        store.append([RunnerTick(aggregate_id="5b6e0c2e-8a4f-4d3e-9b9e-3f1f2a6c7d10")
                      for _ in range(3)])
        report = status_report(store, [ItemCounts()], max_lag=0)
    [row] = report.processors
    assert row.waiting_events >= 3 and row.lag_events >= 3
    assert row.failing and "not yet readable" in row.problems[0]
