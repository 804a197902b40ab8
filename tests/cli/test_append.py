"""esctl append: one event by hand, and every way bad input is refused without a write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import AGGREGATE, Backend, Cli, add, one_error_line, total, write_config


@pytest.fixture
def app_cli(cli: Cli, project: Path) -> Cli:
    write_config(project)
    return cli


def test_append_stores_the_event_and_prints_it(app_cli: Cli, backend: Backend) -> None:
    result = app_cli("append", "cli_item_added", "--aggregate", AGGREGATE,
                     "--body", '{"name": "pen"}', "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    [stored] = backend.open().read_aggregate(AGGREGATE)
    assert (printed["id"], printed["version"]) == (stored.id, 1)
    assert stored.type == "cli_item_added"
    assert stored.body == {"name": "pen"}


def test_append_reads_the_body_from_a_file(app_cli: Cli, backend: Backend,
                                           project: Path) -> None:
    (project / "body.json").write_text('{"name": "from file"}')
    result = app_cli("append", "cli_item_added", "-a", AGGREGATE, "--body", "@body.json")
    assert result.exit_code == 0, result.output
    assert backend.open().read_aggregate(AGGREGATE)[0].body == {"name": "from file"}


def test_append_reads_the_body_from_stdin(app_cli: Cli, backend: Backend) -> None:
    result = app_cli("append", "cli_item_added", "-a", AGGREGATE, "--body", "-",
                     input='{"name": "piped"}')
    assert result.exit_code == 0, result.output
    assert backend.open().read_aggregate(AGGREGATE)[0].body == {"name": "piped"}


def test_append_keeps_the_correlation_id(app_cli: Cli, backend: Backend) -> None:
    correlation = "11111111-2222-4333-8444-555555555555"
    app_cli("append", "cli_item_added", "-a", AGGREGATE, "--body", '{"name": "x"}',
            "--correlation-id", correlation)
    assert backend.open().read_aggregate(AGGREGATE)[0].correlation_id == correlation


def test_append_with_the_right_expected_version_succeeds(app_cli: Cli,
                                                         backend: Backend) -> None:
    add(backend.open(), "ItemAdded", AGGREGATE, name="a")
    result = app_cli("append", "cli_item_removed", "-a", AGGREGATE, "--expected-version", "1")
    assert result.exit_code == 0, result.output
    assert backend.open().aggregate_version(AGGREGATE) == 2


def test_an_unknown_type_can_be_allowed(app_cli: Cli, backend: Backend) -> None:
    result = app_cli("append", "legacy_thing", "-a", AGGREGATE, "--allow-unknown-type")
    assert result.exit_code == 0, result.output
    assert backend.open().read_aggregate(AGGREGATE)[0].type == "legacy_thing"


BAD_INPUT = {
    "malformed JSON": (["--body", '{"name": '], 2, "not valid JSON"),
    "body not an object": (["--body", "[1, 2]"], 2, "must be a JSON object"),
    "bad aggregate UUID": (["--aggregate", "not-a-uuid"], 2, "aggregate_id must be a UUID"),
    "bad correlation UUID": (["--correlation-id", "xyz"], 2, "correlation_id must be a UUID"),
    "missing body file": (["--body", "@missing.json"], 2, "cannot read body file"),
    "version conflict": (["--expected-version", "3"], 4, "expected version 3"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_exits_with_one_line_and_writes_nothing(case: str, app_cli: Cli,
                                                          backend: Backend) -> None:
    extra, code, message = BAD_INPUT[case]
    add(backend.open(), "ItemAdded", AGGREGATE, name="first")
    args = ["append", "cli_item_added", "--aggregate", AGGREGATE, "--body", '{"name": "x"}']
    result = app_cli(*args, *extra)
    assert result.exit_code == code
    assert message in one_error_line(result)
    assert result.stdout == ""
    assert total(backend.open()) == 1


def test_an_unregistered_type_exits_2_and_writes_nothing(app_cli: Cli,
                                                         backend: Backend) -> None:
    result = app_cli("append", "no_such_type", "--aggregate", AGGREGATE)
    assert result.exit_code == 2
    assert "unknown event type 'no_such_type'" in one_error_line(result)
    assert total(backend.open()) == 0
