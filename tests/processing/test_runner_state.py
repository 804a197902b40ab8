"""Processor state rows: written by running instances, read by `esctl status`."""

from __future__ import annotations

import os
import socket

import pytest

from esctl_lib import EventStore
from esctl_lib.processing.state import (
    STALE_AFTER,
    ProcessorState,
    StateRecorder,
    heartbeat,
    read_state,
    read_states,
    record_standby,
    record_state,
)
from esctl_lib.testing import eventually


def test_a_recorded_state_reads_back(store: EventStore) -> None:
    record_state(store, "p", "running", pid=123, host="web-1", position=7)
    [state] = read_states(store)
    assert (state.name, state.state, state.pid, state.host, state.position) == (
        "p", "running", 123, "web-1", 7)


def test_states_read_back_sorted_by_name(store: EventStore) -> None:
    for name in ("b", "a", "c"):
        record_state(store, name, "idle", pid=1)
    assert [s.name for s in read_states(store)] == ["a", "b", "c"]


def test_a_state_without_an_error_keeps_the_last_error(store: EventStore) -> None:
    record_state(store, "p", "failing", pid=1, error="boom")
    record_state(store, "p", "running")
    state = read_state(store, "p")
    assert state is not None and (state.state, state.last_error) == ("running", "boom")


def test_an_unknown_state_is_rejected(store: EventStore) -> None:
    with pytest.raises(ValueError, match="unknown processor state"):
        record_state(store, "p", "sleeping")


def test_a_processor_that_never_ran_has_no_state(store: EventStore) -> None:
    assert read_state(store, "p") is None


def test_a_heartbeat_keeps_the_state_and_moves_the_position(store: EventStore) -> None:
    record_state(store, "p", "idle", pid=os.getpid(), position=1)
    heartbeat(store, "p", position=5, pid=os.getpid())
    state = read_state(store, "p")
    assert state is not None and (state.state, state.position) == ("idle", 5)


def test_a_heartbeat_from_another_instance_leaves_the_row_alone(store: EventStore) -> None:
    record_state(store, "p", "running", pid=os.getpid(), position=1)
    heartbeat(store, "p", position=99, pid=os.getpid() + 1)
    state = read_state(store, "p")
    assert state is not None and state.position == 1


def test_a_row_whose_heartbeat_stopped_long_ago_is_stale() -> None:
    state = ProcessorState("p", "running", heartbeat_at=1000.0)
    assert state.display_state(now=1000.0 + STALE_AFTER + 1) == "running (stale)"


def test_a_row_with_a_recent_heartbeat_is_not_stale() -> None:
    state = ProcessorState("p", "running", heartbeat_at=1000.0)
    assert state.display_state(now=1001.0) == "running"


def test_a_stopped_row_is_never_stale() -> None:
    assert not ProcessorState("p", "stopped", heartbeat_at=0.0).is_stale(now=1e9)


def test_a_standby_does_not_hide_a_live_instance(store: EventStore) -> None:
    record_state(store, "p", "running", pid=111)
    assert not record_standby(store, "p", pid=222)
    state = read_state(store, "p")
    assert state is not None and (state.state, state.pid) == ("running", 111)


def test_a_standby_is_recorded_when_no_live_instance_is(store: EventStore) -> None:
    record_state(store, "p", "stopped", pid=111)
    assert record_standby(store, "p", pid=222)
    state = read_state(store, "p")
    assert state is not None and (state.state, state.pid) == ("standby", 222)


def _wait_for_state(store: EventStore, name: str, wanted: str) -> ProcessorState:
    def reached() -> ProcessorState | None:
        state = read_state(store, name)
        return state if state is not None and state.state == wanted else None

    return eventually(reached, timeout=10, what=f"{name} to reach {wanted}")


def test_the_recorder_writes_a_state_change_from_its_thread(store: EventStore) -> None:
    recorder = StateRecorder(store, "p", interval=0.05)
    recorder.start()
    recorder.update("failing", 3, "ValueError: boom")
    state = _wait_for_state(store, "p", "failing")
    recorder.stop()
    assert (state.position, state.last_error, state.host) == (
        3, "ValueError: boom", socket.gethostname())


def test_the_recorder_writes_stopped_with_the_last_position_when_stopped(
    store: EventStore,
) -> None:
    recorder = StateRecorder(store, "p", interval=0.05)
    recorder.start()
    recorder.update("running", 42)
    recorder.stop()
    state = read_state(store, "p")
    assert state is not None and (state.state, state.position) == ("stopped", 42)


def test_the_recorder_reports_a_lost_lock_once(store: EventStore) -> None:
    lost: list[bool] = []
    recorder = StateRecorder(store, "p", interval=0.02, check=lambda: False,
                             on_lost=lambda: lost.append(True))
    recorder.start()
    eventually(lambda: lost, what="the lost lock to be reported")
    recorder.stop()  # joins the recorder's thread: no report can come after this
    assert lost == [True]
