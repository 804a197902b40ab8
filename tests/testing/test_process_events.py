"""process_events runs a projector or reactor over given events and shows what it left."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from todo_app.events import TodoAbandoned, TodoAdded, TodoAmended, TodoCompleted
from todo_app.notifier import Email
from todo_app.projections import CompletedTodos, OutstandingTodos
from todo_app.reactors import TodoCompletedNotifier

from esctl_lib import BatchTransaction, Event, ProcessingError, Projector, handles, open_store
from esctl_lib.testing import process_events

NOW = dt.datetime(2024, 5, 3, 9, 0, tzinfo=dt.UTC)
MILK, TAXES = str(uuid.uuid4()), str(uuid.uuid4())
NO_DETAILS: dict[str, Any] = {"description": None, "due_date": None, "stakeholder_email": None}


def added(todo: str, title: str, **details: Any) -> TodoAdded:
    return TodoAdded(aggregate_id=todo, body={"title": title, **NO_DETAILS, **details})


class Outbox:
    """A notifier that keeps the emails it is given."""

    def __init__(self) -> None:
        self.sent: list[Email] = []

    def send(self, email: Email) -> None:
        self.sent.append(email)


def test_a_projectors_rows_come_back_per_table() -> None:
    run = process_events(OutstandingTodos(), [
        added(MILK, "Buy milk"),
        added(TAXES, "File taxes"),
        TodoAmended(aggregate_id=TAXES, body={"description": "before June"}),
        TodoCompleted(aggregate_id=MILK, body={"completed_on": "2024-05-03"}),
    ])
    assert run.rows() == [{"todo_id": TAXES, "title": "File taxes", **NO_DETAILS,
                           "description": "before June"}]
    assert run.handled == 4
    assert run.emitted == []


def test_every_table_of_a_projector_is_read_back() -> None:
    run = process_events(CompletedTodos(), [
        added(MILK, "Buy milk"),
        added(TAXES, "File taxes"),
        TodoCompleted(aggregate_id=MILK, body={"completed_on": "2024-05-03"}),
    ])
    assert run.tables == {
        CompletedTodos.scratch: [{"todo_id": TAXES, "title": "File taxes", **NO_DETAILS}],
        CompletedTodos.table: [{"todo_id": MILK, "title": "Buy milk", **NO_DETAILS,
                                "completed_on": "2024-05-03"}],
    }


def test_a_reactors_emitted_events_come_back_with_their_causes() -> None:
    outbox = Outbox()
    completed = TodoCompleted(aggregate_id=MILK, body={"completed_on": "2024-05-03"})
    run = process_events(TodoCompletedNotifier(outbox, clock=lambda: NOW), [
        added(MILK, "Buy milk", stakeholder_email="partner@example.com"),
        added(TAXES, "File taxes"),
        TodoAbandoned(aggregate_id=TAXES, body={"abandoned_on": "2024-05-03"}),
        completed,
    ])
    [notified] = run.emitted
    assert (notified.type, notified.aggregate_id, notified.causation_id) == (
        "stakeholder_notified_of_todo_completion", MILK, completed.uuid)
    assert notified.body == {"notified_on": "2024-05-03T09:00:00+00:00",
                             "email": "partner@example.com"}
    assert [e.to for e in outbox.sent] == ["partner@example.com"]
    assert run.rows() == []


def test_the_given_events_come_back_as_stored() -> None:
    run = process_events(OutstandingTodos(), [added(MILK, "Buy milk"), added(TAXES, "Taxes")])
    assert [(e.id, e.version, e.aggregate_id) for e in run.events] == [(1, 1, MILK), (2, 1, TAXES)]


class CountedItems(Projector):
    """Counts events per aggregate through ``tx.defer``, the way a fast projector writes."""

    name = "testing_counted_items"
    tables = {"testing_counts": "CREATE TABLE IF NOT EXISTS testing_counts "
                                "(aggregate_id TEXT PRIMARY KEY, n INTEGER NOT NULL)"}

    @handles(TodoAdded, TodoAmended)
    def _count(self, event: Event, tx: BatchTransaction) -> None:
        p = tx.placeholder
        tx.defer(f"INSERT INTO testing_counts (aggregate_id, n) VALUES ({p}, 1) "
                 "ON CONFLICT (aggregate_id) DO UPDATE SET n = testing_counts.n + 1",
                 (event.aggregate_id,))


def test_a_handler_that_defers_its_writes_has_them_committed() -> None:
    run = process_events(CountedItems(), [
        added(MILK, "Buy milk"),
        TodoAmended(aggregate_id=MILK, body={"title": "Buy oat milk"}),
        added(TAXES, "File taxes"),
    ])
    assert run.rows() == sorted([{"aggregate_id": MILK, "n": 2}, {"aggregate_id": TAXES, "n": 1}],
                                key=lambda r: r["aggregate_id"])


def test_a_given_sqlite_store_is_used_and_left_open(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'events.db'}")
    run = process_events(OutstandingTodos(), [added(MILK, "Buy milk")], store=store)
    assert run.store is store
    assert store.get_tracker("outstanding_todos") == 1
    assert [row["title"] for row in run.rows()] == ["Buy milk"]
    store.close()


def test_a_failing_handler_fails_the_run_naming_the_event() -> None:
    class Broken(OutstandingTodos):
        name = "testing_broken"

        def _amended(self, event: Event, tx: Any) -> None:
            raise RuntimeError("no amendments today")

    with pytest.raises(ProcessingError, match="no amendments today") as caught:
        process_events(Broken(), [added(MILK, "Buy milk"),
                                  TodoAmended(aggregate_id=MILK, body={"title": "x"})])
    assert caught.value.event_id == 2


def test_rows_needs_a_table_name_when_there_are_several() -> None:
    run = process_events(CompletedTodos(), [])
    with pytest.raises(ValueError, match="name one of the tables"):
        run.rows()
