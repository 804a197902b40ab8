"""esctl run, status, replay, reset, errors and retry against the test app's processors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from esctl_lib import EventStore, open_tables
from esctl_lib.processing.locks import processor_lock
from esctl_lib.testing import eventually
from tests.backends import drop_schema
from tests.cli.conftest import (
    AGGREGATE,
    ALL_PROCESSORS,
    OTHER,
    Backend,
    Cli,
    add,
    make_backend,
    one_error_line,
    total,
    write_config,
)

EXPLODER = "cliapp.processors:Exploder"


@pytest.fixture
def app_cli(cli: Cli, project: Path) -> Cli:
    write_config(project, processors=ALL_PROCESSORS)
    return cli


def items(store: EventStore) -> list[dict[str, Any]]:
    with open_tables(store) as tx:
        return tx.select("cli_items", order_by=("item_id",))


def fill(store: EventStore) -> None:
    add(store, "ItemAdded", AGGREGATE, name="pen")
    add(store, "ItemAdded", OTHER, name="ink")
    add(store, "ItemAdded", AGGREGATE, name="pen, again")
    add(store, "ItemRemoved", OTHER)


def status(cli: Cli) -> dict[str, Any]:
    result = cli("status", "--json")
    data: dict[str, Any] = json.loads(result.stdout)
    data["by_name"] = {p["name"]: p for p in data["processors"]}
    return data


def test_status_json_reports_lag_that_falls_to_zero_after_run_once(
    app_cli: Cli, backend: Backend
) -> None:
    fill(backend.open())
    before = status(app_cli)["by_name"]["cli_items"]
    assert (before["lag_events"], before["position"]) == (4, 0)
    assert before["lag_seconds"] >= 0
    assert app_cli("run", "--once").exit_code == 0
    after = status(app_cli)["by_name"]["cli_items"]
    assert (after["lag_events"], after["lag_seconds"]) == (0, 0)
    assert after["position"] >= 4  # its types' newest event (the store head is later)


def test_status_shows_the_store_and_kinds(app_cli: Cli, backend: Backend) -> None:
    fill(backend.open())
    data = status(app_cli)
    assert data["store"]["total_events"] == 4
    assert data["store"]["schema_version"] >= 1
    assert data["failing"] is False
    assert {p["name"]: p["kind"] for p in data["processors"]} == {
        "cli_items": "projector", "cli_noticer": "reactor"}


def test_status_prints_a_table(app_cli: Cli, backend: Backend) -> None:
    result = app_cli("status")
    assert result.exit_code == 0
    assert "cli_items" in result.stdout and "projector" in result.stdout


def test_status_with_only_a_store_lists_no_processors(cli: Cli, backend: Backend) -> None:
    result = cli("status", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["processors"] == []


def test_run_once_projects_every_event(app_cli: Cli, backend: Backend) -> None:
    fill(backend.open())
    assert app_cli("run", "--once").exit_code == 0
    assert [(r["item_id"], r["name"], r["added"]) for r in items(backend.open())] == [
        (AGGREGATE, "pen, again", 2)]


def test_run_once_runs_only_the_named_processor(app_cli: Cli, backend: Backend) -> None:
    fill(backend.open())
    assert app_cli("run", "--once", "cli_items").exit_code == 0
    assert backend.open().trackers().get("cli_noticer", 0) == 0


def test_replay_rebuilds_a_projection_identical_to_the_original(
    app_cli: Cli, backend: Backend
) -> None:
    store = backend.open()
    fill(store)
    app_cli("run", "--once")
    original = items(store)
    result = app_cli("replay", "cli_items", "--yes")
    assert result.exit_code == 0, result.output
    assert items(store) == original
    assert store.get_tracker("cli_items") == store.latest_position()


def test_replay_refuses_a_reactor_without_allow_side_effects(app_cli: Cli,
                                                             backend: Backend) -> None:
    store = backend.open()
    fill(store)
    app_cli("run", "--once")
    result = app_cli("replay", "cli_noticer", "--yes")
    assert result.exit_code == 1
    assert "side effects" in one_error_line(result)
    assert store.get_tracker("cli_noticer") > 0


def test_replaying_a_reactor_does_not_store_its_events_twice(app_cli: Cli,
                                                             backend: Backend) -> None:
    store = backend.open()
    fill(store)
    app_cli("run", "--once", "cli_noticer")
    noticed = total(store, "cli_item_noticed")
    result = app_cli("replay", "cli_noticer", "--yes", "--allow-side-effects")
    assert result.exit_code == 0, result.output
    assert total(store, "cli_item_noticed") == noticed == 3


def test_replay_asks_on_a_terminal_and_a_no_changes_nothing(
    app_cli: Cli, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = backend.open()
    fill(store)
    app_cli("run", "--once")
    monkeypatch.setattr("esctl.render.is_terminal", lambda stream: True)
    result = app_cli("replay", "cli_items", input="n\n")
    assert result.exit_code == 1
    assert store.get_tracker("cli_items") == 4


def test_reset_moves_the_position_without_processing(app_cli: Cli, backend: Backend) -> None:
    store = backend.open()
    fill(store)
    app_cli("run", "--once")
    result = app_cli("reset", "cli_items", "--to", "1", "--yes")
    assert result.exit_code == 0, result.output
    assert store.get_tracker("cli_items") == 1
    assert len(items(store)) == 1


def test_reset_refuses_a_position_past_the_head(app_cli: Cli, backend: Backend) -> None:
    fill(backend.open())
    result = app_cli("reset", "cli_items", "--to", "99", "--yes")
    assert result.exit_code == 2
    assert "past the head" in one_error_line(result)


def test_reset_refuses_while_a_runner_holds_the_processor(app_cli: Cli,
                                                          backend: Backend) -> None:
    store = backend.open()
    fill(store)
    app_cli("run", "--once")
    lock = processor_lock(backend.open(), "cli_items")
    assert lock.try_acquire()
    try:
        result = app_cli("reset", "cli_items", "--yes")
    finally:
        lock.close()
    assert result.exit_code == 1
    assert store.get_tracker("cli_items") == 4


def test_status_exits_1_when_a_processor_is_failing(cli: Cli, backend: Backend,
                                                    project: Path) -> None:
    write_config(project, processors=(EXPLODER,), extra='[processing]\nretry = "none"\n')
    add(backend.open(), "ItemAdded", AGGREGATE, name="bomb", explode=True)
    assert cli("run", "--once").exit_code != 0
    result = cli("status", "--json")
    assert result.exit_code == 1
    [row] = json.loads(result.stdout)["processors"]
    assert row["state"] == "failing"
    assert "boom on bomb" in row["last_error"]


@pytest.fixture
def parking_cli(cli: Cli, backend: Backend, project: Path) -> Cli:
    write_config(project, processors=(EXPLODER,),
                 extra='[processing]\nretry = "none"\nmax_attempts = 1\n')
    add(backend.open(), "ItemAdded", AGGREGATE, name="bomb", explode=True)
    add(backend.open(), "ItemAdded", OTHER, name="fine")
    assert cli("run", "--once").exit_code == 1  # it parked an event
    return cli


def test_errors_lists_parked_events(parking_cli: Cli) -> None:
    result = parking_cli("errors", "--json")
    assert result.exit_code == 0
    [parked] = json.loads(result.stdout)
    assert (parked["processor"], parked["event_id"]) == ("cli_exploder", 1)
    assert "boom on bomb" in parked["error"]


def test_errors_prints_a_table(parking_cli: Cli) -> None:
    result = parking_cli("errors", "cli_exploder")
    assert "cli_exploder" in result.stdout and "boom on bomb" in result.stdout


def test_status_counts_parked_events(parking_cli: Cli) -> None:
    row = status(parking_cli)["by_name"]["cli_exploder"]
    assert (row["parked"], row["position"]) == (1, 2)


def test_retry_queues_parked_events(parking_cli: Cli) -> None:
    result = parking_cli("retry", "cli_exploder")
    assert result.exit_code == 0, result.output
    [parked] = json.loads(parking_cli("errors", "--json").stdout)
    assert parked["queued"] is True


def test_retry_of_an_event_that_is_not_parked_exits_2(parking_cli: Cli) -> None:
    result = parking_cli("retry", "cli_exploder", "2")
    assert result.exit_code == 2
    assert "not parked" in one_error_line(result)


def test_run_processes_new_events_until_sigterm(backend: Backend, project: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    write_config(project, processors=("cliapp.processors:ItemList",))
    store = backend.open()
    add(store, "ItemAdded", AGGREGATE, name="pen")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    env.update({k: v for k, v in backend.env().items() if v is not None})
    proc = subprocess.Popen([sys.executable, "-m", "esctl", "run"], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        eventually(lambda: store.get_tracker("cli_items") >= 1, timeout=30)
        add(store, "ItemAdded", OTHER, name="ink")
        eventually(lambda: len(items(store)) == 2, timeout=30)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "cli_items" in stderr


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[Backend]:
    """A set-up PostgreSQL store (the reader horizon is PostgreSQL's)."""
    backend = make_backend("postgres", tmp_path)
    backend.open().setup()
    try:
        yield backend
    finally:
        for store in backend.opened:
            store.close()
        drop_schema(backend.schema or "")


def test_status_on_postgresql_shows_events_held_back_by_an_open_transaction(
    postgres: Backend, project: Path
) -> None:
    write_config(project, processors=ALL_PROCESSORS)
    with postgres.open().transaction() as other:  # may append, has written: it blocks
        other.will_append()
        other.set_tracker("cli_blocker", 0)
        [(pid,)] = other.fetchall("SELECT pg_backend_pid()")
        from cliapp.events import ItemAdded

        postgres.open().append([ItemAdded(aggregate_id=AGGREGATE, body={"name": "late"})])
        data = status(Cli(postgres.env()))
    # Only a transaction that can still append to this store holds its readers back.
    assert data["horizon"]["pending"] == 1
    assert data["horizon"]["pid"] == pid


def test_the_logging_file_receives_the_run_log(cli: Cli, backend: Backend,
                                               project: Path) -> None:
    write_config(project, processors=("cliapp.processors:ItemList",),
                 extra='[logging]\nfile = "logs/esctl.log"\n')
    add(backend.open(), "ItemAdded", AGGREGATE, name="pen")
    result = cli("run", "--once")
    assert result.exit_code == 0, result.output
    assert "cli_items" in (project / "logs" / "esctl.log").read_text()
    assert "cli_items" not in result.stderr
