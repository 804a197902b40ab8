"""The completion notifier emails the stakeholder once and records that it did."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from todo_app.aggregates import Todo
from todo_app.commands import AddTodo, AmendTodo, CommandHandler, CompleteTodo
from todo_app.notifier import OutboxNotifier
from todo_app.reactors import TodoCompletedNotifier

from esctl_lib import EventStore, Repository, open_tables
from esctl_lib.processing import process_available
from tests.todo.scenario import tell_story

NOW = dt.datetime(2017, 6, 12, 14, 0, tzinfo=dt.UTC)


def notifier(tmp_path: Path) -> TodoCompletedNotifier:
    return TodoCompletedNotifier(OutboxNotifier(tmp_path / "outbox.jsonl"), clock=lambda: NOW)


def notifications(store: EventStore) -> list[dict[str, object]]:
    found = store.read_after(0, types=["stakeholder_notified_of_todo_completion"])
    return [
        {"todo": e.aggregate_id, "body": e.body, "causation": e.causation_id,
         "correlation": e.correlation_id}
        for e in found
    ]


def test_completing_a_todo_emails_its_stakeholder(store: EventStore, tmp_path: Path) -> None:
    tell_story(store)
    reactor = notifier(tmp_path)
    process_available(reactor, store)
    [email] = OutboxNotifier(tmp_path / "outbox.jsonl").sent()
    assert (email.to, email.subject) == ("partner@example.com", "Todo completed: Buy milk")


def test_the_notification_event_names_its_cause_and_correlation(
    store: EventStore, tmp_path: Path
) -> None:
    story = tell_story(store)
    process_available(notifier(tmp_path), store)
    [completed] = store.read_after(0, types=["todo_completed"])
    assert notifications(store) == [{
        "todo": story.milk,
        "body": {"notified_on": "2017-06-12T14:00:00+00:00", "email": "partner@example.com"},
        "causation": completed.uuid,
        "correlation": story.milk_completed_by,
    }]


def test_a_todo_without_stakeholder_sends_no_email_and_emits_nothing(
    store: EventStore, tmp_path: Path
) -> None:
    handler = CommandHandler(Repository(store))
    todo_id = str(uuid.uuid4())
    handler.handle(AddTodo(todo_id=todo_id, title="Quiet todo"))
    handler.handle(CompleteTodo(todo_id=todo_id, completed_on=NOW.date()))
    process_available(notifier(tmp_path), store)
    assert notifications(store) == []
    assert OutboxNotifier(tmp_path / "outbox.jsonl").sent() == []


def test_an_amended_stakeholder_email_is_the_one_notified(
    store: EventStore, tmp_path: Path
) -> None:
    handler = CommandHandler(Repository(store))
    todo_id = str(uuid.uuid4())
    handler.handle(AddTodo(todo_id=todo_id, title="Report", stakeholder_email="old@example.com"))
    handler.handle(AmendTodo(todo_id=todo_id, stakeholder_email="new@example.com"))
    handler.handle(CompleteTodo(todo_id=todo_id, completed_on=NOW.date()))
    process_available(notifier(tmp_path), store)
    assert [e.to for e in OutboxNotifier(tmp_path / "outbox.jsonl").sent()] == ["new@example.com"]


def test_the_reactor_forgets_todos_once_they_are_closed(store: EventStore, tmp_path: Path) -> None:
    story = tell_story(store)
    process_available(notifier(tmp_path), store)
    with open_tables(store) as tx:
        rows = tx.select(TodoCompletedNotifier.table, columns=("todo_id",), order_by=("title",))
    assert rows == [{"todo_id": story.gutters}, {"todo_id": story.taxes}]


def test_reprocessing_from_the_start_neither_emails_nor_emits_twice(
    store: EventStore, tmp_path: Path
) -> None:
    tell_story(store)
    process_available(notifier(tmp_path), store)
    reactor = notifier(tmp_path)
    reactor.reset(store)
    process_available(reactor, store)
    assert len(notifications(store)) == 1
    assert len(OutboxNotifier(tmp_path / "outbox.jsonl").sent()) == 1


def test_a_notified_todo_still_loads_as_completed(store: EventStore, tmp_path: Path) -> None:
    story = tell_story(store)
    process_available(notifier(tmp_path), store)
    todo = Repository(store).load(Todo, story.milk)
    assert (todo.completed, todo.version) == (True, 3)
