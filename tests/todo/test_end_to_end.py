"""The todo app end to end on SQLite and PostgreSQL: commands in-process, then the real
``esctl run --once`` / ``status`` / ``replay`` in subprocesses, then every read model."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from todo_app.notifier import OutboxNotifier
from todo_app.projections import (
    OutstandingTodos,
    TodoView,
    completed_todos,
    outstanding_todos,
    scheduled_todos,
)

from esctl_lib import EventStore, open_tables
from tests.todo.e2e import Deployment, deploy
from tests.todo.scenario import Story, tell_story


@dataclass
class Ran:
    """A deployment after the story was told and ``esctl run --once`` ran."""

    deployment: Deployment
    store: EventStore
    story: Story


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def ran(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    with deploy(request.param, tmp_path_factory.mktemp(request.param)) as deployment:
        store = deployment.open()
        story = tell_story(store)
        deployment.esctl("run", "--once")
        yield Ran(deployment, store, story)


def test_run_once_brings_every_processor_to_the_head(ran: Ran) -> None:
    report = json.loads(ran.deployment.esctl("status", "--json").stdout)
    lags = {p["name"]: (p["lag_events"], p["failing"]) for p in report["processors"]}
    assert lags == {
        "outstanding_todos": (0, False),
        "completed_todos": (0, False),
        "scheduled_todos": (0, False),
        "todo_completed_notifier": (0, False),
    }


def test_outstanding_todos_shows_the_open_todos(ran: Ran) -> None:
    assert [t.todo_id for t in outstanding_todos(ran.store)] == [
        ran.story.gutters, ran.story.taxes
    ]


def test_completed_todos_shows_the_completed_todo(ran: Ran) -> None:
    assert completed_todos(ran.store) == [
        TodoView(todo_id=ran.story.milk, title="Buy milk", due_date=dt.date(2024, 5, 2),
                 stakeholder_email="partner@example.com", completed_on=dt.date(2024, 5, 3))
    ]


def test_scheduled_todos_shows_only_the_todo_with_a_due_date(ran: Ran) -> None:
    assert [(t.todo_id, t.due_date) for t in scheduled_todos(ran.store)] == [
        (ran.story.taxes, dt.date(2024, 6, 30))
    ]


def test_the_reactor_emitted_one_notification_caused_by_the_completion(ran: Ran) -> None:
    [completed] = ran.store.read_after(0, types=["todo_completed"])
    [notified] = ran.store.read_after(0, types=["stakeholder_notified_of_todo_completion"])
    assert (notified.aggregate_id, notified.causation_id, notified.correlation_id) == (
        ran.story.milk, completed.uuid, ran.story.milk_completed_by
    )
    assert notified.body["email"] == "partner@example.com"


def test_the_reactor_emailed_the_stakeholder_through_the_outbox(ran: Ran) -> None:
    [email] = OutboxNotifier(ran.deployment.outbox).sent()
    assert (email.to, email.subject) == ("partner@example.com", "Todo completed: Buy milk")


def test_replaying_outstanding_todos_rebuilds_the_same_projection(ran: Ran) -> None:
    with open_tables(ran.store) as tx:
        before = tx.select(OutstandingTodos.table, order_by=("todo_id",))
    ran.deployment.esctl("replay", "outstanding_todos", "--yes")
    with open_tables(ran.store) as tx:
        after = tx.select(OutstandingTodos.table, order_by=("todo_id",))
    assert (after, len(after)) == (before, 2)


def test_running_again_emits_and_emails_nothing_more(ran: Ran) -> None:
    ran.deployment.esctl("run", "--once")
    notified = ran.store.read_after(0, types=["stakeholder_notified_of_todo_completion"])
    assert (len(notified), len(OutboxNotifier(ran.deployment.outbox).sent())) == (1, 1)
