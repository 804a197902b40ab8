"""Commands: validated requests to change one todo, and the handler that runs them.

A command object is built from untrusted input with ``build(params)``, which raises
:class:`InvalidCommand` naming the bad field, or directly from typed values. The
:class:`CommandHandler` loads the todo, lets the command act on it and saves the new
events. If another writer changed the todo in between (:class:`ConcurrencyError`), it
reloads and tries again, up to ``max_attempts`` times, then raises :class:`CommandConflict`.

::

    handler = CommandHandler(Repository(store))
    handler.handle(AddTodo.build({"todo_id": todo_id, "title": "Buy milk"}))
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from esctl_lib import ConcurrencyError, Event, Repository
from todo_app.aggregates import Todo
from todo_app.errors import CommandConflict, InvalidCommand

log = logging.getLogger(__name__)

_DETAIL_FIELDS = ("todo_id", "title", "description", "due_date", "stakeholder_email")


@dataclass(frozen=True, slots=True)
class AddTodo:
    """Add a new todo. ``todo_id`` (a UUID) and ``title`` are required."""

    todo_id: str
    title: str
    description: str | None = None
    due_date: dt.date | None = None
    stakeholder_email: str | None = None

    fields: ClassVar[tuple[str, ...]] = _DETAIL_FIELDS

    def __post_init__(self) -> None:
        _set(self, "todo_id", _uuid(self.todo_id))
        _check_title(self.title)
        _check_email(self.stakeholder_email)

    @classmethod
    def build(cls, params: Mapping[str, Any]) -> AddTodo:
        """Validate raw input (strings, as from a form or the command line)."""
        _only(params, cls.fields)
        return cls(
            todo_id=_text(params, "todo_id", required=True),
            title=_text(params, "title", required=True),
            description=_text(params, "description"),
            due_date=_date(params, "due_date"),
            stakeholder_email=_text(params, "stakeholder_email"),
        )

    def execute(self, todo: Todo) -> None:
        """Run the command on the loaded todo."""
        todo.add(
            title=self.title,
            description=self.description,
            due_date=self.due_date,
            stakeholder_email=self.stakeholder_email,
        )


@dataclass(frozen=True, slots=True)
class AmendTodo:
    """Change some of an open todo's details; fields left ``None`` stay as they are."""

    todo_id: str
    title: str | None = None
    description: str | None = None
    due_date: dt.date | None = None
    stakeholder_email: str | None = None

    fields: ClassVar[tuple[str, ...]] = _DETAIL_FIELDS

    def __post_init__(self) -> None:
        _set(self, "todo_id", _uuid(self.todo_id))
        if self.title is not None:
            _check_title(self.title)
        _check_email(self.stakeholder_email)
        changes = (self.title, self.description, self.due_date, self.stakeholder_email)
        if all(value is None for value in changes):
            raise InvalidCommand("nothing to amend: give at least one field to change")

    @classmethod
    def build(cls, params: Mapping[str, Any]) -> AmendTodo:
        """Validate raw input (strings, as from a form or the command line)."""
        _only(params, cls.fields)
        return cls(
            todo_id=_text(params, "todo_id", required=True),
            title=_text(params, "title"),
            description=_text(params, "description"),
            due_date=_date(params, "due_date"),
            stakeholder_email=_text(params, "stakeholder_email"),
        )

    def execute(self, todo: Todo) -> None:
        """Run the command on the loaded todo."""
        todo.amend(
            title=self.title,
            description=self.description,
            due_date=self.due_date,
            stakeholder_email=self.stakeholder_email,
        )


@dataclass(frozen=True, slots=True)
class CompleteTodo:
    """Mark an open todo as done on ``completed_on``."""

    todo_id: str
    completed_on: dt.date

    fields: ClassVar[tuple[str, ...]] = ("todo_id", "completed_on")

    def __post_init__(self) -> None:
        _set(self, "todo_id", _uuid(self.todo_id))

    @classmethod
    def build(cls, params: Mapping[str, Any]) -> CompleteTodo:
        """Validate raw input (strings, as from a form or the command line)."""
        _only(params, cls.fields)
        return cls(
            todo_id=_text(params, "todo_id", required=True),
            completed_on=_required_date(params, "completed_on"),
        )

    def execute(self, todo: Todo) -> None:
        """Run the command on the loaded todo."""
        todo.complete(completed_on=self.completed_on)


@dataclass(frozen=True, slots=True)
class AbandonTodo:
    """Give up an open todo on ``abandoned_on``."""

    todo_id: str
    abandoned_on: dt.date

    fields: ClassVar[tuple[str, ...]] = ("todo_id", "abandoned_on")

    def __post_init__(self) -> None:
        _set(self, "todo_id", _uuid(self.todo_id))

    @classmethod
    def build(cls, params: Mapping[str, Any]) -> AbandonTodo:
        """Validate raw input (strings, as from a form or the command line)."""
        _only(params, cls.fields)
        return cls(
            todo_id=_text(params, "todo_id", required=True),
            abandoned_on=_required_date(params, "abandoned_on"),
        )

    def execute(self, todo: Todo) -> None:
        """Run the command on the loaded todo."""
        todo.abandon(abandoned_on=self.abandoned_on)


TodoCommand = AddTodo | AmendTodo | CompleteTodo | AbandonTodo


class CommandHandler:
    """Runs todo commands: load the todo, let the command act, save the new events."""

    def __init__(self, repository: Repository, *, max_attempts: int = 3) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.repository = repository
        self.max_attempts = max_attempts

    def handle(self, command: TodoCommand, *, correlation_id: str | None = None) -> list[Event]:
        """Run ``command``; returns the stored events, stamped with one correlation id.

        Domain errors (:class:`~todo_app.errors.CommandRejected`) pass through. A
        :class:`ConcurrencyError` reloads the todo and retries, so the rules are checked
        again against what the other writer did.
        """
        correlation_id = correlation_id or str(uuid.uuid4())
        for attempt in range(1, self.max_attempts + 1):
            todo = self.repository.load(Todo, command.todo_id)
            command.execute(todo)
            try:
                return self.repository.save(todo, correlation_id=correlation_id)
            except ConcurrencyError as e:
                if attempt == self.max_attempts:
                    raise CommandConflict(command.todo_id, attempt) from e
                log.info("todo %s changed concurrently; retrying (%d)", command.todo_id, attempt)
        raise AssertionError("unreachable")


COMMANDS: dict[str, type[TodoCommand]] = {
    "add": AddTodo,
    "amend": AmendTodo,
    "complete": CompleteTodo,
    "abandon": AbandonTodo,
}
"""Command classes by verb, for fronts that dispatch on a name."""


# -- validation helpers ----------------------------------------------------------------------
def _only(params: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidCommand(f"unknown field(s): {', '.join(unknown)}")


def _text(params: Mapping[str, Any], key: str, *, required: bool = False) -> Any:
    value = params.get(key)
    if isinstance(value, str):
        value = value.strip() or None
    if value is None and required:
        raise InvalidCommand(f"{key} is required")
    return value


def _required_date(params: Mapping[str, Any], key: str) -> dt.date:
    value = _date(params, key)
    if value is None:
        raise InvalidCommand(f"{key} is required")
    return value


def _date(params: Mapping[str, Any], key: str) -> dt.date | None:
    value = _text(params, key)
    if value is None or type(value) is dt.date:
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        pass
    try:
        return dt.datetime.fromisoformat(value).date()
    except (TypeError, ValueError):
        raise InvalidCommand(f"{key} is not a date (use YYYY-MM-DD): {value!r}") from None


def _uuid(value: Any) -> str:
    try:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    except ValueError:
        raise InvalidCommand(f"todo_id must be a UUID: {value!r}") from None


def _check_title(title: str) -> None:
    if not isinstance(title, str) or not title.strip():
        raise InvalidCommand("title is required")


def _check_email(email: str | None) -> None:
    if email is None:
        return
    name, at, domain = email.partition("@")
    if not (isinstance(email, str) and name and at and "." in domain and " " not in email):
        raise InvalidCommand(f"stakeholder_email is not an email address: {email!r}")


def _set(command: object, name: str, value: Any) -> None:
    object.__setattr__(command, name, value)
