"""Each projector folds the story into its table; its query reads it back."""

from __future__ import annotations

import datetime as dt
import uuid

from todo_app.commands import AddTodo, CommandHandler
from todo_app.projections import (
    CompletedTodos,
    OutstandingTodos,
    ScheduledTodos,
    TodoView,
    completed_todos,
    outstanding_todos,
    scheduled_todos,
)

from esctl_lib import EventStore, Repository, open_tables
from esctl_lib.processing import process_available
from tests.todo.scenario import tell_story


def test_outstanding_todos_lists_open_todos_with_their_amendments(store: EventStore) -> None:
    story = tell_story(store)
    process_available(OutstandingTodos(), store)
    assert outstanding_todos(store) == [
        TodoView(todo_id=story.gutters, title="Clean gutters"),
        TodoView(todo_id=story.taxes, title="File taxes", description="before June",
                 due_date=dt.date(2024, 6, 30)),
    ]


def test_completed_todos_lists_completed_todos_with_their_details(store: EventStore) -> None:
    story = tell_story(store)
    process_available(CompletedTodos(), store)
    assert completed_todos(store) == [
        TodoView(todo_id=story.milk, title="Buy milk", due_date=dt.date(2024, 5, 2),
                 stakeholder_email="partner@example.com", completed_on=dt.date(2024, 5, 3)),
    ]


def test_completed_todos_forgets_closed_todos_in_its_scratch_table(store: EventStore) -> None:
    story = tell_story(store)
    process_available(CompletedTodos(), store)
    with open_tables(store) as tx:
        scratch = tx.select(CompletedTodos.scratch, columns=("todo_id",), order_by=("title",))
    assert scratch == [{"todo_id": story.gutters}, {"todo_id": story.taxes}]


def test_scheduled_todos_leaves_out_todos_without_a_due_date(store: EventStore) -> None:
    story = tell_story(store)
    process_available(ScheduledTodos(), store)
    assert [t.todo_id for t in scheduled_todos(store)] == [story.taxes]


def test_scheduled_todos_are_ordered_by_due_date(store: EventStore) -> None:
    handler = CommandHandler(Repository(store))
    for title, due in [("March", 3), ("January", 1), ("February", 2)]:
        handler.handle(AddTodo(todo_id=str(uuid.uuid4()), title=title,
                               due_date=dt.date(2024, due, 1)))
    process_available(ScheduledTodos(), store)
    assert [t.title for t in scheduled_todos(store)] == ["January", "February", "March"]
