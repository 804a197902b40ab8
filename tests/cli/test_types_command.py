"""`esctl types`: every registered type, its class, aliases, upcasters and body fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esctl_lib import EventRegistry, event_types
from tests.cli.conftest import Cli
from tests.cli.test_typed_append_import import write_todo_config


@pytest.fixture
def todo_cli(bare_cli: Cli, project: Path) -> Cli:
    write_todo_config(project)
    return bare_cli


def test_types_lists_each_type_with_its_class_and_fields(todo_cli: Cli) -> None:
    result = todo_cli("types")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "todo_added  todo_app.events.TodoAdded" in out
    assert "body: todo_app.events.TodoAddedBody" in out
    assert "    title: str  required" in out
    assert "    due_date: date | None  default null" in out


def test_types_json_gives_each_body_as_a_json_schema(todo_cli: Cli) -> None:
    result = todo_cli("types", "--json")
    assert result.exit_code == 0, result.output
    types = {t["type"]: t for t in json.loads(result.stdout)["types"]}
    # In-process, the registry also holds what other tests imported: look at the todo types.
    assert {"stakeholder_notified_of_todo_completion", "todo_abandoned", "todo_added",
            "todo_amended", "todo_completed"} <= set(types)
    added = types["todo_added"]
    assert added["class"] == "todo_app.events.TodoAdded"
    assert added["body_schema"]["required"] == ["title"]
    assert added["body_schema"]["properties"]["due_date"]["anyOf"][0] == {
        "format": "date", "type": "string"}


def test_untyped_types_aliases_and_upcasters_are_listed() -> None:
    from esctl_lib import Event

    registry = EventRegistry()

    class Renamed(Event, type_name="types_renamed", aliases=("types_old",), registry=registry):
        pass

    @Renamed.upcaster
    def fill(event: Event) -> Event:
        return event

    registry.add_upcaster("types_gone", fill)
    report = event_types(registry)
    [info] = report.types
    assert (info.name, info.aliases, info.body_model, info.fields) == (
        "types_renamed", ("types_old",), None, ())
    assert info.upcasters == (f"{__name__}.{fill.__qualname__}",)
    assert report.orphan_upcasters == {"types_gone": (f"{__name__}.{fill.__qualname__}",)}


def test_append_help_points_to_types(bare_cli: Cli) -> None:
    result = bare_cli("append", "--help")
    assert "esctl types" in result.stdout
