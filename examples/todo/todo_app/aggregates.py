"""The ``Todo`` aggregate: the rules a todo's life must follow.

A command method checks the rules against the state folded from past events, then
records a new event with :meth:`apply`. Handlers (``@handles``) only change state:
they run for new events and again every time the todo is loaded, so they never check
rules or touch the outside world.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from esctl_lib import Aggregate, Event, handles
from todo_app.errors import (
    TodoAlreadyAbandoned,
    TodoAlreadyAdded,
    TodoAlreadyCompleted,
    TodoNotFound,
)
from todo_app.events import (
    StakeholderNotifiedOfTodoCompletion,
    TodoAbandoned,
    TodoAbandonedBody,
    TodoAdded,
    TodoAddedBody,
    TodoAmended,
    TodoAmendedBody,
    TodoCompleted,
    TodoCompletedBody,
)


class Todo(Aggregate):
    """One todo: added once, amended while open, then completed or abandoned."""

    def __init__(self, aggregate_id: Any, events: Iterable[Event] = ()) -> None:
        self.added = False
        self.completed = False
        self.abandoned = False
        super().__init__(aggregate_id, events)

    # -- commands: check the rules, then record what happened ------------------------------
    def add(
        self,
        *,
        title: str,
        description: str | None = None,
        due_date: dt.date | None = None,
        stakeholder_email: str | None = None,
    ) -> None:
        """Add the todo; a todo can be added only once."""
        if self.added:
            raise TodoAlreadyAdded(self.id)
        body = TodoAddedBody(title=title, description=description, due_date=due_date,
                             stakeholder_email=stakeholder_email)
        self.apply(TodoAdded(aggregate_id=self.id, body=body))

    def amend(
        self,
        *,
        title: str | None = None,
        description: str | None = None,
        due_date: dt.date | None = None,
        stakeholder_email: str | None = None,
    ) -> None:
        """Change some details of an open todo; ``None`` leaves a field as it is."""
        self._require_open()
        changes = {
            "title": title,
            "description": description,
            "due_date": due_date,
            "stakeholder_email": stakeholder_email,
        }
        body = {key: value for key, value in changes.items() if value is not None}
        if body:  # only the fields set are stored (TodoAmended.body_exclude_unset)
            self.apply(TodoAmended(aggregate_id=self.id, body=TodoAmendedBody.model_validate(body)))

    def complete(self, *, completed_on: dt.date) -> None:
        """Mark an open todo as done."""
        self._require_open()
        self.apply(TodoCompleted(aggregate_id=self.id,
                                 body=TodoCompletedBody(completed_on=completed_on)))

    def abandon(self, *, abandoned_on: dt.date) -> None:
        """Give up an open todo."""
        self._require_open()
        self.apply(TodoAbandoned(aggregate_id=self.id,
                                 body=TodoAbandonedBody(abandoned_on=abandoned_on)))

    def _require_open(self) -> None:
        if not self.added:
            raise TodoNotFound(self.id)
        if self.completed:
            raise TodoAlreadyCompleted(self.id)
        if self.abandoned:
            raise TodoAlreadyAbandoned(self.id)

    # -- event handlers: state changes only ------------------------------------------------
    @handles(TodoAdded)
    def _added(self, event: Event) -> None:
        self.added = True

    @handles(TodoCompleted)
    def _completed(self, event: Event) -> None:
        self.completed = True

    @handles(TodoAbandoned)
    def _abandoned(self, event: Event) -> None:
        self.abandoned = True

    @handles(TodoAmended, StakeholderNotifiedOfTodoCompletion)
    def _no_state_change(self, event: Event) -> None:
        """These events change nothing the rules look at."""
