"""The todo app's events: facts, named by explicit, stable type names, with typed bodies.

Each event declares its body as a pydantic model (``class TodoAdded(Event, body=...)``):
a body is validated when the event is made, when ``esctl append`` or ``esctl import``
receives it, and when a stored event's ``data`` is read. ``event.data`` is the model
(dates as :class:`datetime.date`); ``event.body`` stays the JSON dict that is stored
(dates as ISO 8601 strings, ``"2024-05-01"``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer

from esctl_lib import Event

#: A time stored as ISO 8601 with an offset, to the second (``2017-06-12T14:00:00+00:00``).
Timestamp = Annotated[
    dt.datetime, PlainSerializer(lambda t: t.isoformat(timespec="seconds"), when_used="json")
]


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TodoAddedBody(_Body):
    title: str
    description: str | None = None
    due_date: dt.date | None = None
    stakeholder_email: str | None = None


class TodoAmendedBody(_Body):
    """Only the fields that changed are set (and stored)."""

    title: str | None = None
    description: str | None = None
    due_date: dt.date | None = None
    stakeholder_email: str | None = None


class TodoCompletedBody(_Body):
    completed_on: dt.date


class TodoAbandonedBody(_Body):
    abandoned_on: dt.date


class StakeholderNotifiedBody(_Body):
    notified_on: Timestamp | None = None
    email: str | None = None


class TodoAdded(Event, type_name="todo_added", body=TodoAddedBody):
    """A todo was added: ``title``, ``description``, ``due_date``, ``stakeholder_email``."""


class TodoAmended(Event, type_name="todo_amended", body=TodoAmendedBody):
    """Some of a todo's details changed; the body holds only the fields that changed."""

    body_exclude_unset = True


class TodoCompleted(Event, type_name="todo_completed", body=TodoCompletedBody):
    """A todo was done, on ``completed_on``."""


class TodoAbandoned(Event, type_name="todo_abandoned", body=TodoAbandonedBody):
    """A todo was given up, on ``abandoned_on``."""


class StakeholderNotifiedOfTodoCompletion(
    Event, type_name="stakeholder_notified_of_todo_completion", body=StakeholderNotifiedBody
):
    """The stakeholder was told a todo was completed: ``notified_on``, ``email``."""
