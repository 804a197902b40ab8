"""Read models: each projector folds events into tables it owns; a query function reads them.

Projections are eventually consistent: they show the events their projector has
processed so far (``esctl run`` keeps them current; ``esctl status`` shows the lag).
A projector's rows and its tracker position commit together in one transaction per
batch, so a projection never holds half a batch and never applies an event twice.

Columns are portable: dates are ISO 8601 text, which sorts in date order on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from esctl_lib import Event, EventStore, Transaction, handles, open_tables
from esctl_lib.processing import Projector
from todo_app.events import TodoAbandoned, TodoAdded, TodoAmended, TodoCompleted

DETAILS = ("title", "description", "due_date", "stakeholder_email")
"""The todo details that TodoAdded carries and TodoAmended may change."""

_DETAIL_COLUMNS = (
    "todo_id TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT, "
    "due_date TEXT, stakeholder_email TEXT"
)


@dataclass(frozen=True, slots=True)
class TodoView:
    """A todo as a projection shows it."""

    todo_id: str
    title: str
    description: str | None = None
    due_date: dt.date | None = None
    stakeholder_email: str | None = None
    completed_on: dt.date | None = None


class OutstandingTodos(Projector):
    """Todos still to do: added, and neither completed nor abandoned."""

    name = "outstanding_todos"
    table = "query_outstanding_todos"
    tables = {table: f"CREATE TABLE IF NOT EXISTS {table} ({_DETAIL_COLUMNS})"}

    @handles(TodoAdded)
    def _added(self, event: Event, tx: Transaction) -> None:
        tx.insert(self.table, {"todo_id": event.aggregate_id, **details(event.body)})

    @handles(TodoAmended)
    def _amended(self, event: Event, tx: Transaction) -> None:
        tx.update(self.table, details(event.body), where={"todo_id": event.aggregate_id})

    @handles(TodoCompleted, TodoAbandoned)
    def _closed(self, event: Event, tx: Transaction) -> None:
        tx.delete(self.table, where={"todo_id": event.aggregate_id})


class CompletedTodos(Projector):
    """Todos that were completed, with the day they were.

    It needs a todo's details when the todo is completed, long after it was added, so it
    keeps the open todos in a scratch table of its own.
    """

    name = "completed_todos"
    table = "query_completed_todos"
    scratch = "query_completed_todos_incomplete_todos"
    tables = {
        scratch: f"CREATE TABLE IF NOT EXISTS {scratch} ({_DETAIL_COLUMNS})",
        table: f"CREATE TABLE IF NOT EXISTS {table} ({_DETAIL_COLUMNS}, completed_on TEXT)",
    }

    @handles(TodoAdded)
    def _added(self, event: Event, tx: Transaction) -> None:
        tx.insert(self.scratch, {"todo_id": event.aggregate_id, **details(event.body)})

    @handles(TodoAmended)
    def _amended(self, event: Event, tx: Transaction) -> None:
        tx.update(self.scratch, details(event.body), where={"todo_id": event.aggregate_id})

    @handles(TodoCompleted)
    def _completed(self, event: Event, tx: Transaction) -> None:
        where = {"todo_id": event.aggregate_id}
        for row in tx.select(self.scratch, where=where):
            completed_on = event.data.completed_on.isoformat()
            tx.insert(self.table, {**row, "completed_on": completed_on})
        tx.delete(self.scratch, where=where)

    @handles(TodoAbandoned)
    def _abandoned(self, event: Event, tx: Transaction) -> None:
        tx.delete(self.scratch, where={"todo_id": event.aggregate_id})


class ScheduledTodos(OutstandingTodos):
    """Open todos that have a due date, soonest first.

    It folds the same events as :class:`OutstandingTodos` (its handlers are inherited) into
    its own table, indexed by due date. The table keeps every open todo, so an amendment
    that sets a due date later has the rest of the details at hand; the query leaves out
    those without one.
    """

    name = "scheduled_todos"
    table = "query_scheduled_todos"
    tables = {
        table: [
            f"CREATE TABLE IF NOT EXISTS {table} ({_DETAIL_COLUMNS})",
            f"CREATE INDEX IF NOT EXISTS {table}_due_date ON {table} (due_date)",
        ]
    }


# -- queries -----------------------------------------------------------------------------
def outstanding_todos(store: EventStore) -> list[TodoView]:
    """Every outstanding todo, by title."""
    with open_tables(store) as tx:
        rows = tx.select(OutstandingTodos.table, order_by=("title", "todo_id"))
    return [view(row) for row in rows]


def completed_todos(store: EventStore) -> list[TodoView]:
    """Every completed todo, most recently completed first."""
    with open_tables(store) as tx:
        rows = tx.select(CompletedTodos.table, order_by=("-completed_on", "title", "todo_id"))
    return [view(row) for row in rows]


def scheduled_todos(store: EventStore) -> list[TodoView]:
    """Outstanding todos with a due date, soonest first; those without one are left out."""
    columns = ("todo_id", *DETAILS)
    sql = (
        f"SELECT {', '.join(columns)} FROM {ScheduledTodos.table} "
        "WHERE due_date IS NOT NULL ORDER BY due_date, title, todo_id"
    )
    with store.transaction() as tx:
        rows = tx.fetchall(sql)
    return [view(dict(zip(columns, row, strict=True))) for row in rows]


def details(body: Mapping[str, Any]) -> dict[str, Any]:
    """The todo details in an event body (other keys are ignored)."""
    return {key: body[key] for key in DETAILS if key in body}


def view(row: Mapping[str, Any]) -> TodoView:
    """A projection row as a :class:`TodoView` (dates parsed)."""
    return TodoView(
        todo_id=str(row["todo_id"]),
        title=row["title"],
        description=row["description"],
        due_date=_date(row["due_date"]),
        stakeholder_email=row["stakeholder_email"],
        completed_on=_date(row.get("completed_on")),
    )


def _date(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)
