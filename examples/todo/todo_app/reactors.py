"""Reactors: processors that act on the world and record what they did as new events.

:class:`TodoCompletedNotifier` emails a todo's stakeholder when the todo is completed,
then emits :class:`StakeholderNotifiedOfTodoCompletion`. The emitted event carries
``causation_id`` (the TodoCompleted event's uuid) and ``correlation_id`` (the command's),
and a uuid derived from the trigger, so processing the same TodoCompleted again never
stores a second notification. The email itself goes through a replaceable
:class:`~todo_app.notifier.Notifier`; the outbox one ignores an email it already holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import ClassVar

from esctl_lib import Event, Transaction, handles
from esctl_lib.processing import Reactor
from todo_app.events import (
    StakeholderNotifiedBody,
    StakeholderNotifiedOfTodoCompletion,
    TodoAbandoned,
    TodoAdded,
    TodoAddedBody,
    TodoAmended,
    TodoCompleted,
)
from todo_app.notifier import Email, Notifier, notifier_from_env

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The current time in UTC."""
    return dt.datetime.now(dt.UTC)


class TodoCompletedNotifier(Reactor):
    """Tells a todo's stakeholder, if it has one, that the todo was completed.

    It keeps its own table of open todos (title and stakeholder email), because the
    TodoCompleted event does not repeat them.
    """

    name = "todo_completed_notifier"
    emits: ClassVar[tuple[type[Event], ...]] = (StakeholderNotifiedOfTodoCompletion,)
    table = "reactor_todo_completed_notifier"
    tables = {
        table: f"CREATE TABLE IF NOT EXISTS {table} "
        "(todo_id TEXT PRIMARY KEY, title TEXT NOT NULL, stakeholder_email TEXT)"
    }

    def __init__(self, notifier: Notifier | None = None, clock: Clock = utc_now) -> None:
        self.notifier = notifier or notifier_from_env()
        self.clock = clock

    @handles(TodoAdded)
    def _added(self, event: Event, tx: Transaction) -> None:
        added: TodoAddedBody = event.data
        row = {"todo_id": event.aggregate_id, "title": added.title,
               "stakeholder_email": added.stakeholder_email}
        tx.insert(self.table, row)

    @handles(TodoAmended)
    def _amended(self, event: Event, tx: Transaction) -> None:
        changes = {k: v for k, v in event.body.items() if k in ("title", "stakeholder_email")}
        if changes:
            tx.update(self.table, changes, where={"todo_id": event.aggregate_id})

    @handles(TodoAbandoned)
    def _abandoned(self, event: Event, tx: Transaction) -> None:
        tx.delete(self.table, where={"todo_id": event.aggregate_id})

    @handles(TodoCompleted)
    def _completed(self, event: Event, tx: Transaction) -> None:
        where = {"todo_id": event.aggregate_id}
        for todo in tx.select(self.table, where=where):
            email = todo["stakeholder_email"]
            if email:
                self.notifier.send(Email(
                    key=event.uuid,
                    to=email,
                    subject=f"Todo completed: {todo['title']}",
                    body=f"{todo['title']!r} was completed on {event.data.completed_on}.",
                ))
                self.emit(StakeholderNotifiedOfTodoCompletion(
                    aggregate_id=event.aggregate_id,
                    body=StakeholderNotifiedBody(notified_on=self.clock(), email=email),
                ))
        tx.delete(self.table, where=where)
