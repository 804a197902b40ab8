"""Two runners on one database: one live instance per processor; the standby takes over."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from esctl_lib import EventStore
from esctl_lib.processing.state import read_state
from tests.backends import StoreSpec
from tests.processing.runner_apps.apps import RunnerTick, read_notes
from tests.processing.runner_apps.support import (
    hold_lock,
    shared_backends,
    start_runner,
    stop,
    wait_until,
)

pytestmark = [shared_backends, pytest.mark.slow]
TICKS = 150  # 20 ms each: about 3 s of work
MORE = 5  # appended once A is dead


@pytest.fixture
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "out"
    directory.mkdir()
    monkeypatch.setenv("ESCTL_RUNNER_TEST_DIR", str(directory))
    return directory


def append_ticks(store: EventStore, count: int) -> None:
    for _ in range(count):
        store.append([RunnerTick(aggregate_id=str(uuid.uuid4()))])


def pids(out: Path) -> list[int]:
    """Pids of the children that recorded intervals, in order of first appearance."""
    return list(dict.fromkeys(int(n[0]) for n in read_notes(out, "intervals")))


def log_of(out: Path, name: str) -> str:
    path = out / f"{name}.log"
    return path.read_text() if path.exists() else ""


def kill_runner_and_child(runner: subprocess.Popen[str], child: int) -> None:
    runner.send_signal(signal.SIGKILL)
    os.kill(child, signal.SIGKILL)
    runner.wait()


def active_then_standby(spec: StoreSpec, out: Path) -> tuple[subprocess.Popen[str], ...]:
    """Runner A processing slow_recorder, and runner B waiting as its standby."""
    append_ticks(spec.opened[0], TICKS)
    first = start_runner(spec, out, "SlowRecorder", log_name="a")
    wait_until(lambda: pids(out), what="runner A to process", proc=first)
    second = start_runner(spec, out, "SlowRecorder", log_name="b")
    wait_until(lambda: "waiting as standby" in log_of(out, "b"), what="B to wait",
               proc=second)
    return first, second


def test_two_runners_never_process_one_processor_at_once(
    store_spec: StoreSpec, out: Path
) -> None:
    first, second = active_then_standby(store_spec, out)
    try:
        kill_runner_and_child(first, pids(out)[0])
        store = store_spec.opened[0]
        append_ticks(store, MORE)  # work only B can do, however far A got before it died
        wait_until(lambda: store.get_tracker("slow_recorder") == TICKS + MORE,
                   what="B to finish the work", proc=second)
    finally:
        stop(second)
    spans = {}
    for pid, start, end, _ in read_notes(out, "intervals"):
        low, high = spans.get(pid, (float(start), float(end)))
        spans[pid] = (min(low, float(start)), max(high, float(end)))
    first_span, second_span = sorted(spans.values())
    assert first_span[1] < second_span[0]


def test_a_standby_takes_over_when_the_active_runner_is_killed(
    store_spec: StoreSpec, out: Path
) -> None:
    first, second = active_then_standby(store_spec, out)
    try:
        kill_runner_and_child(first, pids(out)[0])
        append_ticks(store_spec.opened[0], MORE)  # work only B can do
        wait_until(lambda: len(pids(out)) == 2, timeout=15, what="B to take over",
                   proc=second)
    finally:
        stop(second)
    assert "slow_recorder took over" in log_of(out, "b")


def test_a_standby_waits_quietly(store_spec: StoreSpec, out: Path) -> None:
    first, second = active_then_standby(store_spec, out)
    time.sleep(3)  # a few of its 1 s lock retries
    stop(first)
    stop(second)
    assert log_of(out, "b").count("waiting as standby") == 1


def state_of(spec: StoreSpec, name: str) -> str | None:
    state = read_state(spec.opened[0], name)
    return state.state if state else None


def test_a_waiting_instance_is_recorded_as_standby(store_spec: StoreSpec, out: Path) -> None:
    holder = hold_lock(store_spec, "tick_counter")  # holds the lock, writes no state row
    runner = start_runner(store_spec, out, "TickCounter")
    try:
        wait_until(lambda: state_of(store_spec, "tick_counter") == "standby", proc=runner,
                   what="the standby state")
    finally:
        stop(runner)
        holder.kill()
        holder.wait()


def test_a_standby_stopped_while_waiting_is_recorded_as_stopped(
    store_spec: StoreSpec, out: Path
) -> None:
    holder = hold_lock(store_spec, "tick_counter")
    runner = start_runner(store_spec, out, "TickCounter")
    try:
        wait_until(lambda: state_of(store_spec, "tick_counter") == "standby", proc=runner,
                   what="the standby state")
        assert stop(runner) == 0
    finally:
        holder.kill()
        holder.wait()
    assert state_of(store_spec, "tick_counter") == "stopped"
