"""Reactors: declared emissions, causation and correlation, and no duplicates on re-runs."""

from __future__ import annotations

import uuid

import pytest

from esctl_lib import (
    Event,
    EventStore,
    InvalidEventError,
    ProcessingError,
    Transaction,
    handles,
    open_tables,
)
from esctl_lib.processing import Reactor, emitted_uuid, process_available, replay
from tests.processing.events import ProcItemAdded, ProcItemAudited, ProcItemNoticed
from tests.processing.helpers import add_one, new_id


class Noticer(Reactor):
    """Emits two notices per added item."""

    name = "proc_noticer"
    emits = (ProcItemNoticed,)

    @handles(ProcItemAdded)
    def _added(self, event: Event, tx: Transaction) -> None:
        for step in ("first", "second"):
            self.emit(ProcItemNoticed(aggregate_id=event.aggregate_id, body={"step": step}))


class TableKeeper(Reactor):
    """Keeps a table of what it noticed, like a projector."""

    name = "proc_table_keeper"
    tables = {"proc_noticed": "CREATE TABLE IF NOT EXISTS proc_noticed "
                              "(event_id BIGINT PRIMARY KEY)"}

    @handles(ProcItemAdded)
    def _added(self, event: Event, tx: Transaction) -> None:
        tx.insert("proc_noticed", {"event_id": event.id})


class Rogue(Reactor):
    name = "proc_rogue"
    emits = (ProcItemNoticed,)

    @handles(ProcItemAdded)
    def _added(self, event: Event, tx: Transaction) -> None:
        self.emit(ProcItemAudited(aggregate_id=event.aggregate_id))


def notices(store: EventStore) -> list[Event]:
    return [e for e in store.read_after(0) if e.type == "proc_item_noticed"]


def test_emitted_events_are_appended(store: EventStore) -> None:
    add_one(store)
    process_available(Noticer(), store)
    assert [e.body["step"] for e in notices(store)] == ["first", "second"]


def test_an_emitted_event_is_caused_by_its_trigger(store: EventStore) -> None:
    trigger = add_one(store)
    process_available(Noticer(), store)
    assert {e.causation_id for e in notices(store)} == {trigger.uuid}


def test_an_emitted_event_shares_the_triggers_correlation_id(store: EventStore) -> None:
    correlation = str(uuid.uuid4())
    store.append([ProcItemAdded(aggregate_id=new_id(), correlation_id=correlation)])
    process_available(Noticer(), store)
    assert {e.correlation_id for e in notices(store)} == {correlation}


def test_without_a_correlation_id_the_trigger_starts_the_correlation(store: EventStore) -> None:
    trigger = add_one(store)
    process_available(Noticer(), store)
    assert {e.correlation_id for e in notices(store)} == {trigger.uuid}


def test_emitted_uuids_derive_from_reactor_trigger_and_index(store: EventStore) -> None:
    trigger = add_one(store)
    process_available(Noticer(), store)
    assert [e.uuid for e in notices(store)] == [
        emitted_uuid("proc_noticer", trigger.uuid, 0),
        emitted_uuid("proc_noticer", trigger.uuid, 1),
    ]


def test_emitted_events_commit_with_the_tracker(store: EventStore) -> None:
    add_one(store)
    process_available(Noticer(), store)
    assert store.get_tracker("proc_noticer") == 1


def test_emitting_an_undeclared_class_fails_the_event(store: EventStore) -> None:
    add_one(store)
    with pytest.raises(ProcessingError) as caught:
        process_available(Rogue(), store)
    assert isinstance(caught.value.__cause__, InvalidEventError)


def test_the_undeclared_emission_error_names_the_class(store: EventStore) -> None:
    add_one(store)
    with pytest.raises(ProcessingError, match="may not emit ProcItemAudited"):
        process_available(Rogue(), store)


def test_emitting_outside_a_handler_is_refused() -> None:
    with pytest.raises(InvalidEventError, match="only allowed inside a handler"):
        Noticer().emit(ProcItemNoticed(aggregate_id=new_id()))


def test_a_rerun_after_a_crash_before_the_position_save_emits_nothing_twice(
    store: EventStore,
) -> None:
    add_one(store)
    reactor = Noticer()
    reactor.setup(store)
    with store.transaction() as tx:  # the emit committed, the tracker move did not
        reactor.process_batch(store.read_after(0), tx, store)
    assert store.get_tracker("proc_noticer") == 0
    process_available(reactor, store)
    assert len(notices(store)) == 2


def test_replaying_a_reactor_does_not_emit_again(store: EventStore) -> None:
    add_one(store)
    add_one(store)
    process_available(Noticer(), store)
    replay(Noticer(), store)
    assert len(notices(store)) == 4


def test_a_reactor_keeps_rows_in_its_own_table(store: EventStore) -> None:
    trigger = add_one(store)
    process_available(TableKeeper(), store)
    with open_tables(store) as tx:
        assert tx.select("proc_noticed") == [{"event_id": trigger.id}]
