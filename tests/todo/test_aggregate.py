"""The Todo aggregate's rules, checked without any store."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from todo_app.aggregates import Todo
from todo_app.errors import (
    TodoAlreadyAbandoned,
    TodoAlreadyAdded,
    TodoAlreadyCompleted,
    TodoNotFound,
)
from todo_app.events import (
    StakeholderNotifiedOfTodoCompletion,
    TodoAbandoned,
    TodoAdded,
    TodoAmended,
    TodoCompleted,
)

DAY = dt.date(2024, 5, 1)

Change = Callable[[Todo], None]
EVERY_CHANGE = pytest.mark.parametrize(
    "command",
    [
        lambda t: t.amend(title="x"),
        lambda t: t.complete(completed_on=DAY),
        lambda t: t.abandon(abandoned_on=DAY),
    ],
    ids=["amend", "complete", "abandon"],
)


def new_todo() -> Todo:
    return Todo(uuid.uuid4())


def added_todo() -> Todo:
    todo = new_todo()
    todo.add(title="Buy milk")
    todo.clear_changes()
    return todo


def test_event_type_names_are_the_documented_ones() -> None:
    assert [e.type_name for e in (TodoAdded, TodoAmended, TodoCompleted, TodoAbandoned)] == [
        "todo_added", "todo_amended", "todo_completed", "todo_abandoned"
    ]
    assert StakeholderNotifiedOfTodoCompletion.type_name == "stakeholder_notified_of_todo_completion"


def test_adding_a_todo_records_todo_added_with_its_details() -> None:
    todo = new_todo()
    todo.add(title="Buy milk", description="2 litres", due_date=DAY, stakeholder_email="a@b.co")
    [event] = todo.changes
    assert isinstance(event, TodoAdded)
    assert event.aggregate_id == todo.id
    assert event.body == {
        "title": "Buy milk", "description": "2 litres",
        "due_date": "2024-05-01", "stakeholder_email": "a@b.co",
    }


def test_a_todo_cannot_be_added_twice() -> None:
    todo = added_todo()
    with pytest.raises(TodoAlreadyAdded, match="already exists"):
        todo.add(title="Again")


def test_amending_records_only_the_changed_fields() -> None:
    todo = added_todo()
    todo.amend(due_date=DAY)
    [event] = todo.changes
    assert isinstance(event, TodoAmended)
    assert event.body == {"due_date": "2024-05-01"}


def test_completing_records_the_completion_date() -> None:
    todo = added_todo()
    todo.complete(completed_on=DAY)
    [event] = todo.changes
    assert isinstance(event, TodoCompleted)
    assert event.body == {"completed_on": "2024-05-01"}


def test_abandoning_records_the_abandonment_date() -> None:
    todo = added_todo()
    todo.abandon(abandoned_on=DAY)
    [event] = todo.changes
    assert isinstance(event, TodoAbandoned)
    assert event.body == {"abandoned_on": "2024-05-01"}


@EVERY_CHANGE
def test_a_todo_that_does_not_exist_cannot_be_changed(command: Change) -> None:
    todo = new_todo()
    with pytest.raises(TodoNotFound, match="does not exist"):
        command(todo)
    assert todo.changes == []


@EVERY_CHANGE
def test_a_completed_todo_cannot_be_changed(command: Change) -> None:
    todo = added_todo()
    todo.complete(completed_on=DAY)
    with pytest.raises(TodoAlreadyCompleted, match="already completed"):
        command(todo)


@EVERY_CHANGE
def test_an_abandoned_todo_cannot_be_changed(command: Change) -> None:
    todo = added_todo()
    todo.abandon(abandoned_on=DAY)
    with pytest.raises(TodoAlreadyAbandoned, match="already abandoned"):
        command(todo)


def test_state_is_rebuilt_from_history_including_the_notification() -> None:
    source = new_todo()
    source.add(title="Buy milk")
    source.complete(completed_on=DAY)
    notified = StakeholderNotifiedOfTodoCompletion(aggregate_id=source.id, body={})
    loaded = Todo(source.id, [*source.changes, notified])
    assert (loaded.added, loaded.completed, loaded.version) == (True, True, 3)
    assert loaded.changes == []
