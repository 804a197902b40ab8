"""Given / when / then for aggregates.

::

    given(Todo, TodoAdded(aggregate_id=todo_id, body={...})) \\
        .when(lambda todo: todo.complete(completed_on=dt.date(2024, 5, 3))) \\
        .then(TodoCompleted(aggregate_id=todo_id, body={"completed_on": "2024-05-03"}))

    given(Todo).when(lambda todo: todo.complete(...)).then_raises(TodoNotFound)

Events compare on type, aggregate id and body; uuids and times are the aggregate's own.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from esctl_lib.aggregates import Aggregate
from esctl_lib.events import Event

A = TypeVar("A", bound=Aggregate)
E = TypeVar("E", bound=BaseException)


def given(
    aggregate_class: type[A], *history: Event, aggregate_id: Any = None
) -> Given[A]:
    """An aggregate of ``aggregate_class`` rebuilt from ``history`` (maybe none).

    Its id is ``aggregate_id``, else the first event's aggregate id, else a new uuid.
    """
    if aggregate_id is None:
        aggregate_id = history[0].aggregate_id if history else str(uuid.uuid4())
    return Given(aggregate_class, aggregate_id, history)


class Given(Generic[A]):
    """An aggregate's past; :meth:`when` runs a command on it."""

    def __init__(self, aggregate_class: type[A], aggregate_id: Any, history: Iterable[Event]):
        self.aggregate_class = aggregate_class
        self.aggregate_id = aggregate_id
        self.history = list(history)

    def build(self) -> A:
        """The aggregate folded from the history, with no pending changes."""
        return self.aggregate_class(self.aggregate_id, self.history)

    def when(self, command: Callable[[A], object]) -> When[A]:
        """Run ``command`` on the rebuilt aggregate (an error is kept for :meth:`When.then_raises`)."""
        aggregate = self.build()
        try:
            command(aggregate)
        except Exception as e:
            return When(aggregate, e)
        return When(aggregate, None)


class When(Generic[A]):
    """The outcome of a command: the events it recorded, or the error it raised."""

    def __init__(self, aggregate: A, error: Exception | None) -> None:
        self.aggregate = aggregate
        self.error = error

    @property
    def changes(self) -> list[Event]:
        """The new events the command recorded."""
        return list(self.aggregate.changes)

    def then(self, *expected: Event) -> A:
        """Assert the command recorded exactly ``expected`` (none: recorded nothing).

        Returns the aggregate for further checks of its state.
        """
        if self.error is not None:
            raise AssertionError(
                f"expected {len(expected)} event(s), but the command raised "
                f"{type(self.error).__name__}: {self.error}"
            ) from self.error
        got = [_summary(e) for e in self.changes]
        wanted = [_summary(e) for e in expected]
        if got != wanted:
            raise AssertionError(
                "the command recorded other events than expected\n"
                f"expected:\n{_lines(wanted)}\ngot:\n{_lines(got)}"
            )
        return self.aggregate

    def then_nothing(self) -> A:
        """Assert the command recorded no event and raised nothing."""
        return self.then()

    def then_raises(self, error: type[E], *, match: str | None = None) -> E:
        """Assert the command raised ``error`` (with ``match`` searched in its message)
        and recorded nothing; returns the error."""
        if self.error is None:
            raise AssertionError(
                f"expected {error.__name__}, but the command raised nothing and recorded:\n"
                f"{_lines([_summary(e) for e in self.changes])}"
            )
        if not isinstance(self.error, error):
            raise AssertionError(
                f"expected {error.__name__}, got {type(self.error).__name__}: {self.error}"
            ) from self.error
        if match is not None and not re.search(match, str(self.error)):
            raise AssertionError(f"{error.__name__} message {str(self.error)!r} does not "
                                 f"match {match!r}")
        if self.changes:
            raise AssertionError(
                f"{error.__name__} was raised, but events were recorded first:\n"
                f"{_lines([_summary(e) for e in self.changes])}"
            )
        return self.error


def _summary(event: Event) -> tuple[str, str, dict[str, Any]]:
    return (event.type, event.aggregate_id, event.body)


def _lines(summaries: list[tuple[str, str, dict[str, Any]]]) -> str:
    if not summaries:
        return "  (no events)"
    return "\n".join(f"  {t} {agg} {body!r}" for t, agg, body in summaries)
