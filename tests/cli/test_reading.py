"""esctl tail and esctl events: reading the stream, filtered, as text or JSON, and following."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from esctl_lib import EventStore
from tests.cli.conftest import AGGREGATE, OTHER, Backend, Cli, add, one_error_line, readable


def fill(store: EventStore) -> None:
    add(store, "ItemAdded", AGGREGATE, name="a")
    add(store, "ItemAdded", OTHER, name="b")
    add(store, "ItemRemoved", AGGREGATE)
    add(store, "ItemAdded", OTHER, name="c")


def ids(result_stdout: str) -> list[int]:
    return [json.loads(line)["id"] for line in result_stdout.splitlines()]


def test_tail_prints_every_event_in_global_order(cli: Cli, backend: Backend) -> None:
    fill(backend.open())
    result = cli("tail", "--json")
    assert result.exit_code == 0, result.output
    assert ids(result.stdout) == [1, 2, 3, 4]


def test_tail_json_has_every_field(cli: Cli, backend: Backend) -> None:
    stored = add(backend.open(), "ItemAdded", AGGREGATE, name="a")
    record = json.loads(cli("tail", "--json").stdout)
    assert record == {
        "id": stored.id, "uuid": stored.uuid, "aggregate_id": AGGREGATE,
        "type": "cli_item_added", "body": {"name": "a"}, "version": 1,
        "created_at": stored.created_at.isoformat(timespec="microseconds"),
        "correlation_id": None, "causation_id": None, "metadata": {},
    }


def test_tail_prints_one_readable_line_per_event(cli: Cli, backend: Backend) -> None:
    fill(backend.open())
    lines = cli("tail").stdout.splitlines()
    assert len(lines) == 4
    assert "cli_item_added" in lines[0] and AGGREGATE in lines[0] and '"name":"a"' in lines[0]


def test_tail_filters_by_type(cli: Cli, backend: Backend) -> None:
    fill(backend.open())
    assert ids(cli("tail", "--json", "--type", "cli_item_removed").stdout) == [3]


def test_tail_filters_by_aggregate(cli: Cli, backend: Backend) -> None:
    fill(backend.open())
    assert ids(cli("tail", "--json", "--aggregate", OTHER).stdout) == [2, 4]


def test_tail_starts_after_a_position(cli: Cli, backend: Backend) -> None:
    fill(backend.open())
    assert ids(cli("tail", "--json", "--from", "2").stdout) == [3, 4]


def test_tail_shows_the_last_events(cli: Cli, backend: Backend) -> None:
    fill(backend.open())
    assert ids(cli("tail", "--json", "--last", "3").stdout) == [2, 3, 4]


def test_tail_shows_the_last_events_of_a_type(cli: Cli, backend: Backend) -> None:
    fill(backend.open())
    assert ids(cli("tail", "--json", "-n", "2", "-t", "cli_item_added").stdout) == [2, 4]


def test_tail_refuses_from_and_last_together(cli: Cli, backend: Backend) -> None:
    result = cli("tail", "--from", "1", "--last", "2")
    assert result.exit_code == 2
    assert "not both" in one_error_line(result)


def test_tail_refuses_a_malformed_aggregate_id(cli: Cli, backend: Backend) -> None:
    result = cli("tail", "--aggregate", "nope")
    assert result.exit_code == 2
    assert "must be a UUID" in one_error_line(result)


def test_events_prints_one_aggregates_history(cli: Cli, backend: Backend) -> None:
    fill(backend.open())
    result = cli("events", AGGREGATE, "--json")
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["version"], r["type"]) for r in records] == [
        (1, "cli_item_added"), (2, "cli_item_removed")]


def test_events_of_an_unknown_aggregate_prints_nothing(cli: Cli, backend: Backend) -> None:
    result = cli("events", AGGREGATE)
    assert (result.exit_code, result.stdout) == (0, "")


def test_events_refuses_a_malformed_aggregate_id(cli: Cli, backend: Backend) -> None:
    result = cli("events", "123")
    assert result.exit_code == 2
    assert "must be a UUID" in one_error_line(result)


def test_a_store_that_is_not_set_up_is_a_runtime_error(blank: Backend, project: Path) -> None:
    result = Cli(blank.env())("tail")
    assert result.exit_code == 1
    assert "esctl setup" in one_error_line(result)


def _reader(stream: IO[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_tail_follow_prints_an_event_appended_by_another_process(
    backend: Backend, project: Path
) -> None:
    store = backend.open()
    add(store, "ItemAdded", AGGREGATE, name="before")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    env.update({k: v for k, v in backend.env().items() if v is not None})
    proc = subprocess.Popen(
        [sys.executable, "-m", "esctl", "tail", "--follow", "--json"], cwd=project, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = _reader(proc.stdout)  # type: ignore[arg-type]
        assert json.loads(lines.get(timeout=30))["body"] == {"name": "before"}
        add(store, "ItemAdded", OTHER, name="after")
        assert json.loads(lines.get(timeout=30))["body"] == {"name": "after"}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130  # Ctrl-C: the documented exit, as everywhere
        assert "Traceback" not in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_tail_into_a_closed_pipe_exits_quietly(backend: Backend, project: Path) -> None:
    from cliapp.events import ItemAdded

    store = backend.open()
    stored = store.append([ItemAdded(aggregate_id=AGGREGATE, body={"name": "x" * 100})
                           for _ in range(3000)])
    readable(store, stored[-1].id or 0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    env.update({k: v for k, v in backend.env().items() if v is not None})
    proc = subprocess.Popen([sys.executable, "-m", "esctl", "tail"], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""


def test_store_level_commands_work_without_the_applications_code(
    cli: Cli, backend: Backend, project: Path
) -> None:
    (project / "eventsourcery.toml").write_text(
        '[app]\nevents = ["not_installed.events"]\nprocessors = ["not_installed.p:P"]\n')
    add(backend.open(), "ItemAdded", AGGREGATE, name="a")
    assert cli("tail").exit_code == 0
    assert cli("events", AGGREGATE).exit_code == 0
    assert cli("export").exit_code == 0
