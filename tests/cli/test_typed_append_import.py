"""`esctl append` and `esctl import` check typed bodies (the todo example's events): a body
that does not fit its model is exit 2, one line naming the field, and nothing is written."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.cli.conftest import AGGREGATE, Backend, Cli, one_error_line, total

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "todo"


def write_todo_config(folder: Path) -> None:
    (folder / "eventsourcery.toml").write_text(
        f'[app]\npaths = ["{EXAMPLE}"]\nevents = ["todo_app.events"]\n')


@pytest.fixture
def todo_cli(cli: Cli, project: Path) -> Cli:
    write_todo_config(project)
    return cli


def test_append_refuses_a_typed_body_missing_a_field(todo_cli: Cli, backend: Backend) -> None:
    result = todo_cli("append", "todo_added", "-a", AGGREGATE, "--body", "{}")
    assert result.exit_code == 2
    assert one_error_line(result) == "esctl: error: todo_added: body.title: field required"
    assert total(backend.open()) == 0


def test_append_refuses_a_typed_body_with_a_bad_value(todo_cli: Cli, backend: Backend) -> None:
    result = todo_cli("append", "todo_completed", "-a", AGGREGATE,
                      "--body", '{"completed_on": "someday"}')
    assert result.exit_code == 2
    assert "todo_completed: body.completed_on: input should be a valid date" in \
        one_error_line(result)
    assert total(backend.open()) == 0


def test_append_stores_a_typed_body_as_its_models_json(todo_cli: Cli, backend: Backend) -> None:
    result = todo_cli("append", "todo_added", "-a", AGGREGATE,
                      "--body", '{"title": "Milk", "due_date": "2024-05-01"}')
    assert result.exit_code == 0, result.output
    [stored] = backend.open().read_aggregate(AGGREGATE)
    assert stored.body == {"title": "Milk", "description": None, "due_date": "2024-05-01",
                           "stakeholder_email": None}


def _record(type_name: str, body: dict[str, object], version: int) -> str:
    return json.dumps({
        "uuid": str(uuid.uuid4()), "aggregate_id": AGGREGATE, "type": type_name, "body": body,
        "version": version, "created_at": "2024-05-01T00:00:00+00:00",
    })


def test_import_checks_every_typed_body_before_writing(todo_cli: Cli, backend: Backend,
                                                       project: Path) -> None:
    lines = [_record("todo_added", {"title": "a"}, 1),
             _record("todo_amended", {"title": "b"}, 2),
             _record("todo_completed", {}, 3)]
    (project / "in.jsonl").write_text("\n".join(lines) + "\n")
    result = todo_cli("import", "in.jsonl")
    assert result.exit_code == 2
    assert one_error_line(result) == (
        "esctl: error: line 3: todo_completed: body.completed_on: field required")
    assert total(backend.open()) == 0


def test_import_of_good_typed_bodies_writes_them(todo_cli: Cli, backend: Backend,
                                                 project: Path) -> None:
    lines = [_record("todo_added", {"title": "a"}, 1),
             _record("todo_completed", {"completed_on": "2024-05-02"}, 2)]
    (project / "in.jsonl").write_text("\n".join(lines) + "\n")
    result = todo_cli("import", "in.jsonl")
    assert result.exit_code == 0, result.output
    assert [e.data.title if e.type == "todo_added" else str(e.data.completed_on)
            for e in backend.open().read_aggregate(AGGREGATE)] == ["a", "2024-05-02"]
