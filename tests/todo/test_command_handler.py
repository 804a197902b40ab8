"""The command handler loads, acts and saves through a real store, retrying lost races."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from todo_app.aggregates import Todo
from todo_app.commands import AddTodo, AmendTodo, CommandHandler, CompleteTodo
from todo_app.errors import CommandConflict, TodoAlreadyCompleted, TodoNotFound
from todo_app.events import TodoAmended, TodoCompleted

from esctl_lib import Aggregate, Event, EventStore, Repository

DAY = dt.date(2024, 5, 1)
A = TypeVar("A", bound=Aggregate)


def rival_amendment(todo_id: str) -> Event:
    return TodoAmended(aggregate_id=todo_id, body={"title": "Rival title"})


def rival_completion(todo_id: str) -> Event:
    return TodoCompleted(aggregate_id=todo_id, body={"completed_on": "2024-01-01"})


class RacingRepository(Repository):
    """A repository under which another writer appends a rival event after each load.

    The save that follows such a load conflicts for real in the store.
    """

    def __init__(self, store: EventStore, rivals: list[Callable[[str], Event]]) -> None:
        super().__init__(store)
        self.rivals = rivals
        self.loads = 0

    def load(self, aggregate_class: type[A], aggregate_id: Any) -> A:
        loaded = super().load(aggregate_class, aggregate_id)
        self.loads += 1
        if self.rivals:
            self.store.append([self.rivals.pop(0)(loaded.id)])
        return loaded


def add(handler: CommandHandler) -> str:
    todo_id = str(uuid.uuid4())
    handler.handle(AddTodo(todo_id=todo_id, title="Buy milk"))
    return todo_id


def test_handling_a_command_saves_its_events(store: EventStore) -> None:
    handler = CommandHandler(Repository(store))
    todo_id = add(handler)
    handler.handle(CompleteTodo(todo_id=todo_id, completed_on=DAY))
    assert [e.type for e in store.read_aggregate(todo_id)] == ["todo_added", "todo_completed"]


def test_events_of_one_command_share_the_given_correlation_id(store: EventStore) -> None:
    handler = CommandHandler(Repository(store))
    correlation_id = str(uuid.uuid4())
    [event] = handler.handle(AddTodo(todo_id=str(uuid.uuid4()), title="t"), correlation_id=correlation_id)
    assert store.read_aggregate(event.aggregate_id)[0].correlation_id == correlation_id


def test_a_rejected_command_writes_nothing(store: EventStore) -> None:
    handler = CommandHandler(Repository(store))
    todo_id = str(uuid.uuid4())
    with pytest.raises(TodoNotFound):
        handler.handle(CompleteTodo(todo_id=todo_id, completed_on=DAY))
    assert store.count() == 0


def test_a_command_that_lost_a_race_is_retried_and_succeeds(store: EventStore) -> None:
    todo_id = add(CommandHandler(Repository(store)))
    repository = RacingRepository(store, rivals=[rival_amendment])
    CommandHandler(repository).handle(AmendTodo(todo_id=todo_id, title="Buy oat milk"))
    types = [e.type for e in store.read_aggregate(todo_id)]
    assert (types, repository.loads) == (["todo_added", "todo_amended", "todo_amended"], 2)


def test_a_retried_command_checks_the_rules_against_the_rivals_change(store: EventStore) -> None:
    todo_id = add(CommandHandler(Repository(store)))
    repository = RacingRepository(store, rivals=[rival_completion])
    with pytest.raises(TodoAlreadyCompleted):
        CommandHandler(repository).handle(CompleteTodo(todo_id=todo_id, completed_on=DAY))
    assert store.aggregate_version(todo_id) == 2


def test_a_command_that_keeps_losing_gives_up_after_max_attempts(store: EventStore) -> None:
    todo_id = add(CommandHandler(Repository(store)))
    repository = RacingRepository(store, rivals=[rival_amendment] * 5)
    handler = CommandHandler(repository, max_attempts=3)
    with pytest.raises(CommandConflict, match="gave up after 3 attempts"):
        handler.handle(AmendTodo(todo_id=todo_id, title="Buy oat milk"))
    assert repository.loads == 3
    assert store.aggregate_version(todo_id) == 4  # the added event and three rival amendments


def test_a_loaded_todo_knows_it_was_completed(store: EventStore) -> None:
    handler = CommandHandler(Repository(store))
    todo_id = add(handler)
    handler.handle(CompleteTodo(todo_id=todo_id, completed_on=DAY))
    assert Repository(store).load(Todo, todo_id).completed
