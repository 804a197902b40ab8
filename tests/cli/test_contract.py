"""The CLI contract: exit codes, one-line usage errors, global options anywhere, readable
help, ``--json`` where a command reports an outcome, ``NO_COLOR``, and nothing from the
store reaching the terminal raw."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from esctl.context import handle_errors
from esctl.main import app
from esctl.reference import command_names
from esctl_lib import Event, EventStore, InvalidEventError
from tests.cli.conftest import (
    AGGREGATE,
    ALL_PROCESSORS,
    OTHER,
    Backend,
    Cli,
    add,
    one_error_line,
    readable,
    write_config,
)

# -- unknown names are bad usage (exit 2), in every command --------------------------------

UNKNOWN_PROCESSOR = [
    ("run", "nope"),
    ("run", "--once", "nope"),
    ("replay", "nope", "--yes"),
    ("reset", "nope", "--yes"),
    ("errors", "nope"),
    ("retry", "nope"),
]


@pytest.mark.parametrize("args", UNKNOWN_PROCESSOR, ids=" ".join)
def test_an_unknown_processor_name_exits_2_with_one_line(cli: Cli, project: Path,
                                                         args: tuple[str, ...]) -> None:
    write_config(project, processors=ALL_PROCESSORS)
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "no processor named 'nope'" in one_error_line(result)


def test_errors_of_a_processor_known_only_to_the_store_needs_no_app_config(
    bare_cli: Cli, backend: Backend
) -> None:
    backend.open().set_tracker("elsewhere", 0)
    result = bare_cli("errors", "elsewhere", env=backend.env())
    assert result.exit_code == 0, result.output
    assert "no parked events" in result.stdout


def test_tail_of_a_type_neither_registered_nor_stored_exits_2(cli: Cli, project: Path) -> None:
    write_config(project)
    result = cli("tail", "--type", "nosuchtype")
    assert result.exit_code == 2
    assert "'nosuchtype'" in one_error_line(result)


def test_tail_follow_of_an_unknown_type_ends_at_once(backend: Backend, project: Path) -> None:
    write_config(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    env.update({k: v for k, v in backend.env().items() if v is not None})
    try:  # a real process, so that a --follow that waits forever fails at the deadline
        result = subprocess.run([sys.executable, "-m", "esctl", "tail", "--type", "typo",
                                 "--follow"], cwd=project, env=env, capture_output=True,
                                text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("tail --follow of an unknown type waited instead of refusing")
    assert result.returncode == 2
    assert result.stderr.startswith("esctl: error: no event of type 'typo'")


def test_tail_of_a_type_stored_but_not_registered_is_fine(cli: Cli, backend: Backend) -> None:
    store = backend.open()
    stored = store.append([Event(type="legacy_thing", aggregate_id=AGGREGATE, body={})])[0]
    readable(store, stored.id)
    result = cli("tail", "--type", "legacy_thing")
    assert result.exit_code == 0, result.output
    assert "legacy_thing" in result.stdout


def test_tail_of_a_type_registered_but_not_stored_yet_is_fine(cli: Cli, project: Path) -> None:
    write_config(project)
    result = cli("tail", "--type", "cli_item_removed")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""


# -- usage errors --------------------------------------------------------------------------

USAGE_ERRORS = [
    ("tail", "--bogus"),
    ("reset",),
    ("tail", "--from", "-1"),
    ("import", "--batch-size", "0"),
    ("nosuchcommand",),
]


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=" ".join)
def test_a_usage_error_is_one_line_and_exit_2(bare_cli: Cli, args: tuple[str, ...]) -> None:
    result = bare_cli(*args)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "Usage:" not in result.output
    assert "--help" in line


def test_a_bad_number_names_the_option_and_the_bound(bare_cli: Cli) -> None:
    line = one_error_line(bare_cli("tail", "--from", "-1"))
    assert "'--from'" in line
    assert "0 or more" in line


# -- global options after the command ------------------------------------------------------


def test_global_options_are_accepted_after_the_command(bare_cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'after.db'}"
    result = bare_cli("config", "--json", "--store-url", url, "--log-level=debug")
    assert result.exit_code == 0, result.output
    settings = json.loads(result.stdout)["settings"]
    assert settings["store.url"] == {"value": url, "from": "flag"}
    assert settings["logging.level"] == {"value": "debug", "from": "flag"}


def test_the_config_option_is_accepted_after_the_command(bare_cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text('[store]\nurl = "sqlite:///elsewhere.db"\n')
    result = bare_cli("config", "--json", "-c", str(config))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["config_file"] == str(config)


def test_an_option_value_that_looks_like_a_global_option_stays_with_its_option(
    cli: Cli, project: Path
) -> None:
    write_config(project)
    result = cli("append", "cli_item_added", "--aggregate", AGGREGATE, "--body",
                 '{"name": "--schema"}', "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["body"] == {"name": "--schema"}


# -- help ------------------------------------------------------------------------------------

COMMANDS = command_names()


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_readable_metavars(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    assert not re.search(r"<[a-z\[\]]+>", result.stdout), result.stdout  # <list[str]>, <int>
    assert "x>=" not in result.stdout
    assert "{" not in result.stdout.splitlines()[0]  # usage line: NAME, not {NAME}


# -- --json where a command reports an outcome ---------------------------------------------


@pytest.fixture
def app_cli(cli: Cli, project: Path, backend: Backend) -> Cli:
    write_config(project, processors=ALL_PROCESSORS)
    add(backend.open(), "ItemAdded", AGGREGATE, name="pen")
    add(backend.open(), "ItemAdded", OTHER, name="ink")
    return cli


def test_run_once_json_reports_each_processor_position(app_cli: Cli, backend: Backend) -> None:
    result = app_cli("run", "--once", "cli_items", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    head = backend.open().latest_position()
    assert report == {"exit_code": 0, "head": head, "processors": {"cli_items": head},
                      "parked": []}


def test_run_json_without_once_is_a_usage_error(app_cli: Cli) -> None:
    result = app_cli("run", "--json")
    assert result.exit_code == 2
    assert "--once" in one_error_line(result)


def test_replay_json_reports_what_it_handled(app_cli: Cli, backend: Backend) -> None:
    result = app_cli("replay", "cli_items", "--yes", "--json")
    assert result.exit_code == 0, result.output
    head = backend.open().latest_position()
    out = json.loads(result.stdout)
    assert {k: out[k] for k in ("processor", "handled", "position", "events")} == {
        "processor": "cli_items", "handled": 2, "position": head, "events": 2}


def test_reset_json_reports_the_move(app_cli: Cli, backend: Backend) -> None:
    assert app_cli("run", "--once").exit_code == 0
    head = backend.open().get_tracker("cli_items")
    result = app_cli("reset", "cli_items", "--to", "0", "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"processor": "cli_items", "from": head, "to": 0}
    assert backend.open().get_tracker("cli_items") == 0


@pytest.fixture
def hostile_cli(cli: Cli, backend: Backend, project: Path) -> Cli:
    """A store with a parked event whose error text holds a newline and an ESC sequence."""
    write_config(project, processors=("cliapp.processors:Exploder",),
                 extra='[processing]\nretry = "none"\nmax_attempts = 1\n')
    add(backend.open(), "ItemAdded", AGGREGATE, name="bad\n\x1b[31mred\x9b", explode=True)
    assert cli("run", "--once").exit_code == 1  # it parked an event
    return cli


def test_retry_json_reports_how_many_were_queued(hostile_cli: Cli) -> None:
    result = hostile_cli("retry", "cli_exploder", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"processor": "cli_exploder", "queued": 1}


# -- nothing from the store reaches the terminal raw --------------------------------------

HOSTILE_TYPE = "evil\nline\x1b[2J\x9b"


def _plant_hostile(store: EventStore, body: dict[str, Any]) -> Event:
    """An event whose stored type holds control characters. The library refuses such a
    name on append, so it is written the way another tool or an old version could have:
    a valid event, then its ``type`` column changed in SQL."""
    stored = store.append([Event(type="placeholder_type", aggregate_id=AGGREGATE, body=body)])[0]
    with store.transaction() as tx:
        tx.execute(f"UPDATE events SET type = {tx.placeholder} WHERE id = {tx.placeholder}",
                   (HOSTILE_TYPE, stored.id))
    readable(store, stored.id)
    return stored


def _no_raw_controls(text: str) -> None:
    assert "\x1b" not in text
    assert "\x9b" not in text


def test_tail_escapes_control_characters_in_type_and_body(cli: Cli, backend: Backend) -> None:
    _plant_hostile(backend.open(), {"note": "a\x1b]0;title\x07b\u2028c"})
    result = cli("tail")
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    _no_raw_controls(line)
    assert "evil\\nline\\x1b[2J\\x9b" in line
    assert "\\u2028" in line


def test_events_escapes_control_characters(cli: Cli, backend: Backend) -> None:
    _plant_hostile(backend.open(), {})
    result = cli("events", AGGREGATE)
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    _no_raw_controls(line)


def test_tail_json_keeps_the_type_exact(cli: Cli, backend: Backend) -> None:
    _plant_hostile(backend.open(), {})
    result = cli("tail", "--json")
    [line] = result.stdout.splitlines()
    _no_raw_controls(line)
    assert json.loads(line)["type"] == HOSTILE_TYPE


def test_the_errors_table_escapes_control_characters(hostile_cli: Cli) -> None:
    result = hostile_cli("errors")
    _no_raw_controls(result.stdout)
    rows = [line for line in result.stdout.splitlines() if "boom on" in line]
    assert len(rows) == 1, result.stdout  # the newline did not split the row
    assert "\\x1b[31m" in rows[0]


def test_status_and_errors_json_escape_c1_controls_and_stay_exact(hostile_cli: Cli) -> None:
    for args in (("errors", "--json"), ("status", "--json")):
        result = hostile_cli(*args)
        _no_raw_controls(result.stdout)
        json.loads(result.stdout)
    [parked] = json.loads(hostile_cli("errors", "--json").stdout)
    assert "bad\n\x1b[31mred" in parked["error"]


def test_an_error_message_escapes_control_characters() -> None:
    tiny = typer.Typer()

    @tiny.command()
    @handle_errors
    def fail() -> None:
        raise InvalidEventError("type from the store: evil\x1b[2J\x9bname\nsecond line")

    result = CliRunner().invoke(tiny, [])
    line = one_error_line(result)
    _no_raw_controls(line)
    assert "evil\\x1b[2J\\x9bname; second line" in line
