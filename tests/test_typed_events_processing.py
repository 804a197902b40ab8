"""Typed bodies on every backend: aggregates and processors get the model as ``event.data``,
and a stored body that does not fit is a poison event, parked like any other."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from esctl_lib import (
    Aggregate,
    Event,
    EventStore,
    InvalidEventError,
    Repository,
    Transaction,
    handles,
)
from esctl_lib.processing import ConstantRetry, Projector, list_parked, run_processor
from tests.processing.helpers import new_id, readable


class PaidBody(BaseModel):
    model_config = ConfigDict(frozen=True)
    amount: Decimal
    paid_at: dt.datetime


class TypedPaid(Event, type_name="typed_proc_paid", body=PaidBody):
    pass


class Account(Aggregate):
    def __init__(self, aggregate_id: Any, events: Any = ()) -> None:
        self.balance = Decimal(0)
        super().__init__(aggregate_id, events)

    def pay(self, amount: Decimal) -> None:
        self.apply(TypedPaid(aggregate_id=self.id,
                             body=PaidBody(amount=amount, paid_at=dt.datetime.now(dt.UTC))))

    @handles(TypedPaid)
    def _paid(self, event: TypedPaid) -> None:
        self.balance += event.data.amount


class PaidTotals(Projector):
    name = "typed_paid_totals"
    tables = {"typed_paid": "CREATE TABLE IF NOT EXISTS typed_paid "
                            "(event_id BIGINT PRIMARY KEY, amount TEXT NOT NULL)"}

    @handles(TypedPaid)
    def _paid(self, event: Event, tx: Transaction) -> None:
        tx.insert("typed_paid", {"event_id": event.id, "amount": str(event.data.amount)})


def paid_rows(store: EventStore) -> list[tuple[int, str]]:
    with store.transaction() as tx:
        return [(int(i), str(a)) for i, a in
                tx.fetchall("SELECT event_id, amount FROM typed_paid ORDER BY event_id")]


def test_an_aggregate_folds_typed_events_with_their_models(store: EventStore) -> None:
    repo = Repository(store)
    account = Account(new_id())
    account.pay(Decimal("1.10"))
    account.pay(Decimal("2.20"))
    repo.save(account)
    loaded = repo.load(Account, account.id)
    assert loaded.balance == Decimal("3.30")
    assert all(isinstance(e.data.paid_at, dt.datetime) for e in store.read_aggregate(account.id))


def test_a_stored_body_that_does_not_fit_is_parked_and_the_rest_processed(
    store: EventStore,
) -> None:
    agg = new_id()
    good = TypedPaid(aggregate_id=agg, body={"amount": "5", "paid_at": "2024-01-01T00:00:00Z"})
    bad = Event(type="typed_proc_paid", aggregate_id=agg, body={"amount": "five"})
    stored = readable(store, store.append([good, bad, good.replace(uuid=new_id())]))
    processor = PaidTotals()
    clock = itertools.count(100)
    run_processor(processor, store, stop=threading.Event(), once=True,
                  retry=ConstantRetry(max_attempts=2, sleep=lambda s: None,
                                      clock=lambda: float(next(clock))))
    assert paid_rows(store) == [(stored[0].id, "5"), (stored[2].id, "5")]
    [parked] = list_parked(store)
    assert (parked.event_id, parked.attempts) == (stored[1].id, 2)
    assert f"event {stored[1].id} (typed_proc_paid, uuid {stored[1].uuid})" in parked.error
    assert "body.amount" in parked.error and "body.paid_at: field required" in parked.error
    assert store.get_tracker("typed_paid_totals") == stored[2].id


def test_loading_an_aggregate_with_a_bad_stored_body_names_event_and_field(
    store: EventStore,
) -> None:
    agg = new_id()
    [stored] = store.append([Event(type="typed_proc_paid", aggregate_id=agg, body={})])
    with pytest.raises(InvalidEventError, match=rf"event {stored.id} .*body\.amount: field required"):
        Repository(store).load(Account, agg)
