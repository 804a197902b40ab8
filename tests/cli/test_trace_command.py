"""`esctl trace`: the causation tree as text and as JSON; an unknown id is exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esctl_lib import EventStore
from tests.cli.conftest import AGGREGATE, OTHER, Backend, Cli, add, one_error_line, write_config

CORRELATION = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def app_cli(cli: Cli, project: Path) -> Cli:
    write_config(project)
    return cli


def story(store: EventStore) -> list[int]:
    """An item added (the trigger), what a reactor did in response on another aggregate,
    and what that caused in turn."""
    from cliapp.events import ItemAdded

    first = add(store, "ItemAdded", AGGREGATE, name="pen")
    second = store.append([ItemAdded(aggregate_id=OTHER, body={"name": "ink"},
                                     correlation_id=CORRELATION, causation_id=first.uuid)])[0]
    third = store.append([ItemAdded(aggregate_id=OTHER, body={"name": "nib"},
                                    correlation_id=CORRELATION, causation_id=second.uuid)])[0]
    return [first.id, second.id, third.id]


def test_trace_prints_the_tree_from_the_trigger(app_cli: Cli, backend: Backend) -> None:
    ids = story(backend.open())
    result = app_cli("trace", str(ids[2]))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split(" cli_item_added")[0] for line in lines] == [
        f"#{ids[0]}", f"└── #{ids[1]}", f"    └── ▶ #{ids[2]}"]
    assert OTHER in lines[1]


def test_trace_json_nests_children(app_cli: Cli, backend: Backend) -> None:
    ids = story(backend.open())
    result = app_cli("trace", CORRELATION, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["matched"], data["shown"], data["more"]) == ("correlation id", 2, 0)
    [tree] = data["trees"]
    assert (tree["id"], tree["children"][0]["id"]) == (ids[1], ids[2])
    assert tree["children"][0]["body"] == {"name": "nib"}


def test_trace_limit_says_how_many_more(app_cli: Cli, backend: Backend) -> None:
    ids = story(backend.open())
    result = app_cli("trace", str(ids[0]), "--limit", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == ["└── ... 2 more",
                                              "... 2 more events not shown (raise --limit)"]


@pytest.mark.parametrize("ident", ["424242", "0d1e2f3a-0000-4d6e-8f70-8192a3b4c5d6", "x"])
def test_an_unknown_id_is_exit_2_with_one_line(app_cli: Cli, backend: Backend,
                                               ident: str) -> None:
    story(backend.open())
    result = app_cli("trace", ident)
    assert result.exit_code == 2
    assert ident in one_error_line(result)
