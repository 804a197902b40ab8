"""given / when / then checks the Todo aggregate's commands against the events they record."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from todo_app.aggregates import Todo
from todo_app.errors import TodoAlreadyCompleted, TodoNotFound
from todo_app.events import TodoAdded, TodoAmended, TodoCompleted

from esctl_lib.testing import given

TODO = str(uuid.uuid4())
MAY_3 = dt.date(2024, 5, 3)
ADDED = TodoAdded(aggregate_id=TODO, body={"title": "Buy milk", "description": None,
                                           "due_date": None, "stakeholder_email": None})
COMPLETED = TodoCompleted(aggregate_id=TODO, body={"completed_on": "2024-05-03"})


def test_a_command_records_the_expected_event() -> None:
    todo = given(Todo, ADDED).when(lambda t: t.complete(completed_on=MAY_3)).then(COMPLETED)
    assert todo.completed and todo.version == 2


def test_a_new_aggregate_starts_from_no_history() -> None:
    given(Todo, aggregate_id=TODO).when(lambda t: t.add(title="Buy milk")).then(ADDED)


def test_a_command_refused_by_the_rules_raises() -> None:
    error = given(Todo, ADDED, COMPLETED) \
        .when(lambda t: t.amend(title="Buy oat milk")) \
        .then_raises(TodoAlreadyCompleted, match="already completed")
    assert error.todo_id == TODO


def test_a_command_on_no_history_is_refused() -> None:
    given(Todo, aggregate_id=TODO).when(lambda t: t.complete(completed_on=MAY_3)) \
        .then_raises(TodoNotFound)


def test_a_command_that_changes_nothing_records_nothing() -> None:
    given(Todo, ADDED).when(lambda t: t.amend()).then_nothing()


def test_other_events_than_expected_fail_with_both_lists() -> None:
    expected = TodoAmended(aggregate_id=TODO, body={"title": "Buy oat milk"})
    with pytest.raises(AssertionError, match=r"(?s)expected:.*todo_amended.*got:.*todo_completed"):
        given(Todo, ADDED).when(lambda t: t.complete(completed_on=MAY_3)).then(expected)


def test_expecting_events_when_the_command_raised_fails_naming_the_error() -> None:
    with pytest.raises(AssertionError, match="raised TodoNotFound"):
        given(Todo, aggregate_id=TODO).when(lambda t: t.complete(completed_on=MAY_3)) \
            .then(COMPLETED)


def test_expecting_an_error_when_none_was_raised_fails_listing_the_events() -> None:
    with pytest.raises(AssertionError, match=r"(?s)expected TodoNotFound.*todo_completed"):
        given(Todo, ADDED).when(lambda t: t.complete(completed_on=MAY_3)) \
            .then_raises(TodoNotFound)


def test_expecting_another_error_fails_naming_both() -> None:
    with pytest.raises(AssertionError, match="expected TodoAlreadyCompleted, got TodoNotFound"):
        given(Todo, aggregate_id=TODO).when(lambda t: t.complete(completed_on=MAY_3)) \
            .then_raises(TodoAlreadyCompleted)
