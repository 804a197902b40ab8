"""The supervising runner: restarts, clean shutdown, startup hook, `once` mode."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from pathlib import Path

import pytest

from esctl_lib import ConfigError, EventStore, load_app
from esctl_lib.processing.state import read_state
from esctl_lib.processing.waiting import is_readable
from esctl_lib.runner import Runner, RunnerSettings, run
from tests.backends import StoreSpec
from tests.processing.runner_apps.apps import RunnerTick, TickCounter, read_notes
from tests.processing.runner_apps.support import (
    APPS,
    hold_lock,
    settings_for,
    shared_backends,
    start_runner,
    stop,
    wait_until,
)

pytestmark = shared_backends


@pytest.fixture
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the test processors note what they do."""
    directory = tmp_path / "out"
    directory.mkdir()
    monkeypatch.setenv("ESCTL_RUNNER_TEST_DIR", str(directory))
    return directory


def append_ticks(store: EventStore, count: int, *, aggregates: int = 1) -> None:
    """Append ``count`` ticks and wait until readers see them (on PostgreSQL another
    session's open writing transaction may hold them back for a moment)."""
    ids = [str(uuid.uuid4()) for _ in range(aggregates)]
    last = 0
    for i in range(count):
        last = store.append([RunnerTick(aggregate_id=ids[i % aggregates])])[0].id or 0
    wait_until(lambda: is_readable(store, last), what="the ticks to be readable")


def state_of(spec: StoreSpec, name: str) -> str | None:
    state = read_state(spec.opened[0], name)
    return state.state if state else None


def log_of(out: Path, name: str = "runner") -> str:
    return (out / f"{name}.log").read_text()


def test_a_child_whose_processor_raises_is_restarted(store_spec: StoreSpec, out: Path) -> None:
    append_ticks(store_spec.opened[0], 1)
    runner = start_runner(store_spec, out, "Crasher", retry="none")
    try:
        wait_until(lambda: len({n[0] for n in read_notes(out, "crasher")}) >= 2,
                   what="a second child to run the crasher", proc=runner)
    finally:
        stop(runner)


def test_the_runner_logs_why_a_child_died(store_spec: StoreSpec, out: Path) -> None:
    append_ticks(store_spec.opened[0], 1)
    runner = start_runner(store_spec, out, "Crasher", retry="none")
    try:
        wait_until(lambda: "restarting in" in log_of(out), what="a restart", proc=runner)
    finally:
        stop(runner)
    assert "crasher exited with code 1; restarting in 1 s" in log_of(out)


def test_restart_delays_double_while_a_child_keeps_dying(
    store_spec: StoreSpec, out: Path
) -> None:
    append_ticks(store_spec.opened[0], 1)
    runner = start_runner(store_spec, out, "Crasher", retry="none")
    try:
        wait_until(lambda: "restarting in 2 s" in log_of(out), what="a second restart",
                   proc=runner)
    finally:
        stop(runner)


def test_a_runner_in_a_thread_stops_when_asked(store_spec: StoreSpec, out: Path) -> None:
    settings = RunnerSettings(settings_for(store_spec.url, TickCounter, schema=store_spec.schema))
    runner = Runner(settings, ["tick_counter"])
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(
        runner.run(install_signal_handlers=False)))
    thread.start()
    wait_until(lambda: state_of(store_spec, "tick_counter") == "idle",
               what="tick_counter to be idle")
    runner.request_stop()
    thread.join(timeout=15)
    assert codes == [0]


def test_sigterm_stops_a_busy_runner_with_exit_code_0(store_spec: StoreSpec, out: Path) -> None:
    append_ticks(store_spec.opened[0], 1000)
    runner = start_runner(store_spec, out, "SlowRecorder", "TickCounter")
    wait_until(lambda: read_notes(out, "intervals"), what="processing", proc=runner)
    assert stop(runner) == 0


def test_sigterm_leaves_every_processor_recorded_as_stopped(
    store_spec: StoreSpec, out: Path
) -> None:
    runner = start_runner(store_spec, out, "SlowRecorder", "TickCounter")
    wait_until(lambda: state_of(store_spec, "tick_counter") == "idle", proc=runner,
               what="tick_counter to be idle")
    wait_until(lambda: state_of(store_spec, "slow_recorder") == "idle", proc=runner,
               what="slow_recorder to be idle")
    stop(runner)
    assert [state_of(store_spec, n) for n in ("slow_recorder", "tick_counter")] == [
        "stopped", "stopped"]


def test_an_idle_runner_stops_well_within_its_grace_period(
    store_spec: StoreSpec, out: Path
) -> None:
    runner = start_runner(store_spec, out, "TickCounter", grace=60)
    wait_until(lambda: state_of(store_spec, "tick_counter") == "idle", proc=runner,
               what="tick_counter to be idle")
    runner.terminate()
    assert runner.wait(timeout=15) == 0  # raises TimeoutExpired if it waited for the grace


def test_a_runner_stopped_while_its_children_start_exits_0(
    store_spec: StoreSpec, out: Path
) -> None:
    runner = start_runner(store_spec, out, "TickCounter", "HookChecker")
    wait_until(lambda: "started hook_checker" in log_of(out), what="the children to start",
               proc=runner)
    assert stop(runner) == 0


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(
    store_spec: StoreSpec, out: Path
) -> None:
    append_ticks(store_spec.opened[0], 1)
    runner = start_runner(store_spec, out, "Stubborn", grace=1)
    wait_until(lambda: read_notes(out, "stubborn"), what="the stubborn child", proc=runner)
    assert stop(runner) == 1
    assert "stubborn did not stop within 1 s; killing it" in log_of(out)


def test_the_startup_hook_runs_in_each_child_before_processing(
    store_spec: StoreSpec, out: Path
) -> None:
    append_ticks(store_spec.opened[0], 1)
    runner = start_runner(store_spec, out, "HookChecker", "OtherHookChecker",
                          hook=f"{APPS}:startup_hook")
    try:
        handled = wait_until(lambda: len(read_notes(out, "handled")) >= 2 and
                             read_notes(out, "handled"), what="both handlers", proc=runner)
    finally:
        stop(runner)
    hooks = {(pid, name) for pid, name in read_notes(out, "hooks")}
    assert {(pid, name, hooked) for pid, name, hooked in handled} == {
        (pid, name, "True") for pid, name in hooks}
    assert str(runner.pid) not in {pid for pid, _ in hooks}


def test_a_child_stops_when_its_runner_is_killed(store_spec: StoreSpec, out: Path) -> None:
    runner = start_runner(store_spec, out, "TickCounter")
    wait_until(lambda: state_of(store_spec, "tick_counter") == "idle", proc=runner,
               what="tick_counter to be idle")
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    wait_until(lambda: state_of(store_spec, "tick_counter") == "stopped",
               what="the orphaned child to stop")


# -- once --------------------------------------------------------------------------------
def run_once(spec: StoreSpec, *processors: object, **options: str) -> int:
    app = load_app(settings_for(spec.url, *processors, schema=spec.schema, **options))
    return run(app, once=True, install_signal_handlers=False)


def test_once_returns_0_at_the_head(store_spec: StoreSpec, out: Path) -> None:
    append_ticks(store_spec.opened[0], 30)
    assert run_once(store_spec, TickCounter) == 0


def test_once_processes_every_event_up_to_the_head(store_spec: StoreSpec, out: Path) -> None:
    store = store_spec.opened[0]
    append_ticks(store, 30, aggregates=3)
    run_once(store_spec, f"{APPS}:TickCounter")
    with store.transaction() as tx:
        counts = sorted(n for (n,) in tx.fetchall("SELECT n FROM tick_counts"))
    assert (counts, store.get_tracker("tick_counter")) == ([10, 10, 10], 30)


def test_once_skips_a_processor_a_live_runner_holds(store_spec: StoreSpec, out: Path) -> None:
    store = store_spec.opened[0]
    append_ticks(store, 3)
    holder = hold_lock(store_spec, "tick_counter")
    try:
        code = run_once(store_spec, TickCounter)
    finally:
        holder.kill()
        holder.wait()
    assert (code, store.get_tracker("tick_counter")) == (1, 0)


def test_once_gives_up_on_a_failing_processor_with_exit_code_1(
    store_spec: StoreSpec, out: Path
) -> None:
    append_ticks(store_spec.opened[0], 1)
    assert run_once(store_spec, "Failing", retry="exponential") == 1


def test_a_failing_processor_is_recorded_as_failing_with_its_error(
    store_spec: StoreSpec, out: Path
) -> None:
    append_ticks(store_spec.opened[0], 1)
    run_once(store_spec, "Failing")
    state = read_state(store_spec.opened[0], "failing")
    assert state is not None and state.state == "failing"
    assert "always fails" in (state.last_error or "")


def test_once_runs_the_startup_hook_before_processing(store_spec: StoreSpec, out: Path) -> None:
    append_ticks(store_spec.opened[0], 1)
    run_once(store_spec, "HookChecker", hook=f"{APPS}:startup_hook")
    assert read_notes(out, "handled") == [[str(os.getpid()), "hook_checker", "True"]]


# -- configuration errors ----------------------------------------------------------------
def test_a_processor_path_that_does_not_import_is_a_config_error(
    store_spec: StoreSpec,
) -> None:
    with pytest.raises(ConfigError, match="no_such_module"):
        load_app(settings_for(store_spec.url, "no_such_module:Thing"))


def test_a_processor_configured_twice_is_a_config_error(store_spec: StoreSpec) -> None:
    with pytest.raises(ConfigError, match="of another configured processor"):
        load_app(settings_for(store_spec.url, TickCounter, f"{APPS}:TickCounter"))


def test_a_processor_named_twice_is_a_config_error(store_spec: StoreSpec) -> None:
    settings = settings_for(store_spec.url, TickCounter, schema=store_spec.schema)
    with pytest.raises(ConfigError, match="listed twice"):
        Runner(RunnerSettings(settings), ["tick_counter", "tick_counter"])


def test_an_unknown_processor_name_is_a_config_error(store_spec: StoreSpec) -> None:
    app = load_app(settings_for(store_spec.url, TickCounter, schema=store_spec.schema))
    with pytest.raises(ConfigError, match="no processor named 'nope'"):
        run(app, ["nope"], install_signal_handlers=False)


def test_an_unknown_retry_policy_is_a_config_error(store_spec: StoreSpec) -> None:
    with pytest.raises(ConfigError, match=r"\[processing\] retry = 'sometimes'"):
        settings_for(store_spec.url, TickCounter, retry="sometimes")

