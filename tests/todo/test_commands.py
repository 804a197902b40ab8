"""Command objects validate their input before anything is loaded or saved."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from todo_app.commands import AbandonTodo, AddTodo, AmendTodo, CompleteTodo
from todo_app.errors import InvalidCommand

TODO_ID = str(uuid.uuid4())


def test_add_builds_typed_values_from_strings() -> None:
    command = AddTodo.build(
        {"todo_id": TODO_ID.upper(), "title": " Buy milk ", "due_date": "2024-05-01"}
    )
    assert command == AddTodo(todo_id=TODO_ID, title="Buy milk", due_date=dt.date(2024, 5, 1))


def test_add_requires_a_todo_id() -> None:
    with pytest.raises(InvalidCommand, match="todo_id is required"):
        AddTodo.build({"title": "Buy milk"})


def test_add_requires_a_title() -> None:
    with pytest.raises(InvalidCommand, match="title is required"):
        AddTodo.build({"todo_id": TODO_ID, "title": "   "})


def test_the_todo_id_must_be_a_uuid() -> None:
    with pytest.raises(InvalidCommand, match="todo_id must be a UUID"):
        AddTodo.build({"todo_id": "42", "title": "Buy milk"})


def test_a_due_date_must_parse() -> None:
    with pytest.raises(InvalidCommand, match="due_date is not a date"):
        AddTodo.build({"todo_id": TODO_ID, "title": "Buy milk", "due_date": "tomorrow"})


def test_a_date_may_be_given_as_an_iso_datetime() -> None:
    command = CompleteTodo.build({"todo_id": TODO_ID, "completed_on": "2024-05-01T10:00:00+10:00"})
    assert command.completed_on == dt.date(2024, 5, 1)


def test_a_stakeholder_email_must_look_like_one() -> None:
    with pytest.raises(InvalidCommand, match="stakeholder_email"):
        AddTodo.build({"todo_id": TODO_ID, "title": "t", "stakeholder_email": "nobody"})


def test_unknown_fields_are_refused_by_name() -> None:
    with pytest.raises(InvalidCommand, match=r"unknown field.*colour"):
        AddTodo.build({"todo_id": TODO_ID, "title": "t", "colour": "red"})


def test_amend_requires_a_todo_id() -> None:
    with pytest.raises(InvalidCommand, match="todo_id is required"):
        AmendTodo.build({"title": "New title"})


def test_amend_requires_something_to_change() -> None:
    with pytest.raises(InvalidCommand, match="nothing to amend"):
        AmendTodo.build({"todo_id": TODO_ID})


def test_amend_checks_its_due_date() -> None:
    with pytest.raises(InvalidCommand, match="due_date is not a date"):
        AmendTodo.build({"todo_id": TODO_ID, "due_date": "2024-13-01"})


def test_complete_requires_completed_on() -> None:
    with pytest.raises(InvalidCommand, match="completed_on is required"):
        CompleteTodo.build({"todo_id": TODO_ID})


def test_complete_requires_a_valid_completed_on() -> None:
    with pytest.raises(InvalidCommand, match="completed_on is not a date"):
        CompleteTodo.build({"todo_id": TODO_ID, "completed_on": "someday"})


def test_abandon_requires_abandoned_on() -> None:
    with pytest.raises(InvalidCommand, match="abandoned_on is required"):
        AbandonTodo.build({"todo_id": TODO_ID, "abandoned_on": ""})


def test_abandon_requires_a_todo_id() -> None:
    with pytest.raises(InvalidCommand, match="todo_id is required"):
        AbandonTodo.build({"abandoned_on": "2024-05-01"})
