"""``esctl skip``, ``errors`` and ``run --once`` around a poison event; parking survives a
kill -9 of the runner."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from esctl_lib import EventStore, parked_events
from esctl_lib.processing.state import read_state
from esctl_lib.testing import eventually
from tests.cli.conftest import AGGREGATE, OTHER, Backend, Cli, add, one_error_line, write_config

EXPLODER = "cliapp.processors:Exploder"
ROOT = Path(__file__).resolve().parents[2]


def poison(backend: Backend, project: Path, extra: str = 'retry = "none"\n') -> EventStore:
    write_config(project, processors=(EXPLODER,), extra="[processing]\n" + extra)
    store = backend.open()
    add(store, "ItemAdded", AGGREGATE, name="fine")
    add(store, "ItemAdded", AGGREGATE, name="bomb", explode=True)
    add(store, "ItemAdded", OTHER, name="fine too")
    return store


def test_run_once_commits_the_events_before_a_failing_one(cli: Cli, backend: Backend,
                                                          project: Path) -> None:
    store = poison(backend, project)
    assert cli("run", "--once").exit_code == 1
    assert store.get_tracker("cli_exploder") == 1


def test_skip_lets_the_processor_go_past_the_event(cli: Cli, backend: Backend,
                                                  project: Path) -> None:
    store = poison(backend, project)
    cli("run", "--once")
    result = cli("skip", "cli_exploder", "2", "--reason", "bad input")
    assert result.exit_code == 0, result.output
    assert cli("run", "--once").exit_code == 0
    [parked] = parked_events(store)
    assert (parked.event_id, parked.error, store.get_tracker("cli_exploder")) == (
        2, "skipped by hand: bad input", 3)


def test_errors_json_shows_type_aggregate_error_attempts_and_when(
    cli: Cli, backend: Backend, project: Path
) -> None:
    poison(backend, project, 'retry = "none"\nmax_attempts = 1\n')
    cli("run", "--once")
    [row] = json.loads(cli("errors", "cli_exploder", "--json").stdout)
    assert (row["event_id"], row["event_type"], row["aggregate_id"], row["attempts"]) == (
        2, "cli_item_added", AGGREGATE, 1)
    assert "boom on bomb" in row["error"] and row["last_failed_at"] > 0


def test_run_once_that_parks_exits_1_and_lists_what_it_parked(
    cli: Cli, backend: Backend, project: Path
) -> None:
    poison(backend, project, 'retry = "none"\nmax_attempts = 1\n')
    result = cli("run", "--once", "--json")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert (out["processors"], [p["event_id"] for p in out["parked"]]) == (
        {"cli_exploder": 3}, [2])
    assert "parked event 2" in result.stderr


def test_skip_of_an_event_already_processed_exits_2(cli: Cli, backend: Backend,
                                                    project: Path) -> None:
    poison(backend, project)
    cli("run", "--once")
    result = cli("skip", "cli_exploder", "1")
    assert result.exit_code == 2
    assert "processed event 1 already" in one_error_line(result)


def test_a_parked_event_is_visible_at_once_and_kept_through_kill_9(
    backend: Backend, project: Path, tmp_path: Path
) -> None:
    # 2 and 3 fail; each parks after 3 attempts a second apart. Before, 2's parking waited
    # for a batch to commit, which came only once 3 was parked too.
    write_config(project, processors=(EXPLODER,), store=True, backend=backend,
                 extra='[processing]\nretry = "constant"\nmax_attempts = 3\n')
    store = backend.open()
    add(store, "ItemAdded", AGGREGATE, name="fine")
    add(store, "ItemAdded", AGGREGATE, name="bomb", explode=True)
    add(store, "ItemAdded", OTHER, name="bomb too", explode=True)
    log = (tmp_path / "run.log").open("w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    env["PYTHONPATH"] = str(ROOT)
    runner = subprocess.Popen([sys.executable, "-m", "esctl", "run", "cli_exploder"],
                              cwd=project, env=env, stdout=log, stderr=log,
                              start_new_session=True)
    try:
        eventually(lambda: [p.event_id for p in parked_events(store)] == [2], timeout=30,
                   what="event 2 alone to be parked")
        state = read_state(store, "cli_exploder")
        os.killpg(runner.pid, signal.SIGKILL)
        if state is not None and state.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(state.pid, signal.SIGKILL)
    finally:
        runner.kill()
        runner.wait()
    again = backend.open()
    assert [p.event_id for p in parked_events(again)][:1] == [2]
    assert again.get_tracker("cli_exploder") >= 2
