"""A small, fixed story told through the command handler, shared by the todo tests."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from todo_app.commands import AbandonTodo, AddTodo, AmendTodo, CommandHandler, CompleteTodo

from esctl_lib import EventStore, Repository


@dataclass(frozen=True)
class Story:
    """The ids of the todos in the story, and the correlation id of the completion."""

    milk: str
    taxes: str
    gutters: str
    dog: str
    milk_completed_by: str


def tell_story(store: EventStore) -> Story:
    """Four todos: milk (completed, with stakeholder), taxes (scheduled, amended),
    gutters (outstanding, no due date), dog (abandoned)."""
    handler = CommandHandler(Repository(store))
    milk, taxes, gutters, dog = (str(uuid.uuid4()) for _ in range(4))
    handler.handle(AddTodo(todo_id=milk, title="Buy milk", due_date=dt.date(2024, 5, 2),
                           stakeholder_email="partner@example.com"))
    handler.handle(AddTodo(todo_id=taxes, title="File taxes", description="before June"))
    handler.handle(AmendTodo(todo_id=taxes, due_date=dt.date(2024, 6, 30)))
    handler.handle(AddTodo(todo_id=gutters, title="Clean gutters"))
    handler.handle(AddTodo(todo_id=dog, title="Walk the dog", due_date=dt.date(2024, 5, 1)))
    handler.handle(AbandonTodo(todo_id=dog, abandoned_on=dt.date(2024, 5, 1)))
    completion = str(uuid.uuid4())
    handler.handle(CompleteTodo(todo_id=milk, completed_on=dt.date(2024, 5, 3)),
                   correlation_id=completion)
    return Story(milk, taxes, gutters, dog, completion)
