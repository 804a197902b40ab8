"""Declaring processors: names, handlers, inheritance, the catch-all and the type filter."""

from __future__ import annotations

import pickle

import pytest

from esctl_lib import Event, EventRegistry, EventStore, ProcessingError, Transaction, handles
from esctl_lib.processing import Processor, Projector, Reactor, handles_all
from tests.processing.events import ProcItemAdded, ProcItemRemoved, ProcRareThing
from tests.processing.helpers import add_one


class Recorder(Processor):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @handles(ProcItemAdded, ProcItemRemoved)
    def _either(self, event: Event, tx: Transaction) -> None:
        self.calls.append(("either", event.type))

    @handles(ProcItemAdded)
    def _added(self, event: Event, tx: Transaction) -> None:
        self.calls.append(("added", event.type))


class SubRecorder(Recorder):
    @handles(ProcRareThing)
    def _rare(self, event: Event, tx: Transaction) -> None:
        self.calls.append(("rare", event.type))


class Everything(Processor):
    def __init__(self) -> None:
        self.types_seen: list[str] = []

    @handles_all
    def _any(self, event: Event, tx: Transaction) -> None:
        self.types_seen.append(event.type)


class AddedAndAll(Processor):
    def __init__(self) -> None:
        self.calls: list[str] = []

    @handles(ProcItemAdded)
    def _added(self, event: Event, tx: Transaction) -> None:
        self.calls.append("added")

    @handles_all
    def _any(self, event: Event, tx: Transaction) -> None:
        self.calls.append("all")


class Failing(Processor):
    name = "failing_one"

    @handles(ProcItemAdded)
    def _added(self, event: Event, tx: Transaction) -> None:
        raise KeyError("title")


def run(processor: Processor, store: EventStore, event: Event) -> None:
    with store.transaction() as tx:
        processor.process_batch([event], tx, store)


def test_the_default_name_comes_from_the_class_name() -> None:
    assert SubRecorder.name == "sub_recorder"


def test_a_declared_name_is_kept() -> None:
    assert Failing.name == "failing_one"


def test_projectors_and_reactors_say_what_kind_they_are() -> None:
    assert (Projector.kind, Reactor.kind) == ("projector", "reactor")


def test_the_types_are_those_with_handlers() -> None:
    assert Recorder().types() == ["proc_item_added", "proc_item_removed"]


def test_handlers_are_inherited_and_extended() -> None:
    assert SubRecorder().types() == ["proc_item_added", "proc_item_removed", "proc_rare_thing"]


def test_several_handlers_of_one_class_run_in_declaration_order(store: EventStore) -> None:
    recorder = Recorder()
    run(recorder, store, add_one(store, ProcItemAdded))
    assert recorder.calls == [("either", "proc_item_added"), ("added", "proc_item_added")]


def test_one_handler_serves_several_classes(store: EventStore) -> None:
    recorder = Recorder()
    run(recorder, store, add_one(store, ProcItemRemoved))
    assert recorder.calls == [("either", "proc_item_removed")]


def test_a_processor_with_only_a_catch_all_subscribes_to_everything() -> None:
    assert Everything().types() is None


def test_a_catch_all_sees_every_event(store: EventStore) -> None:
    everything = Everything()
    run(everything, store, add_one(store, ProcRareThing))
    assert everything.types_seen == ["proc_rare_thing"]


def test_a_catch_all_beside_handlers_keeps_the_filter() -> None:
    assert AddedAndAll().types() == ["proc_item_added"]


def test_the_catch_all_runs_after_the_specific_handlers(store: EventStore) -> None:
    processor = AddedAndAll()
    run(processor, store, add_one(store, ProcItemAdded))
    assert processor.calls == ["added", "all"]


def test_an_event_without_a_handler_is_skipped(store: EventStore) -> None:
    processor = AddedAndAll()
    run(processor, store, add_one(store, ProcItemRemoved))
    assert processor.calls == []


def test_two_catch_alls_are_refused() -> None:
    with pytest.raises(TypeError, match="several catch-all"):

        class Twice(Processor):
            @handles_all
            def _one(self, event: Event, tx: Transaction) -> None: ...

            @handles_all
            def _two(self, event: Event, tx: Transaction) -> None: ...


def test_aliases_of_a_handled_type_are_in_the_filter() -> None:
    registry = EventRegistry()

    class Renamed(Event, type_name="proc_renamed", aliases=("proc_old_name",),
                  registry=registry):
        pass

    class OnRenamed(Processor):
        @handles(Renamed)
        def _renamed(self, event: Event, tx: Transaction) -> None: ...

    assert OnRenamed().types(registry) == ["proc_old_name", "proc_renamed"]


def test_a_type_an_upcaster_starts_from_is_in_the_filter() -> None:
    registry = EventRegistry()
    registry.add_upcaster("proc_legacy", lambda event: event)
    assert Recorder().types(registry) == ["proc_item_added", "proc_item_removed", "proc_legacy"]


def test_a_failing_handler_raises_a_processing_error_naming_the_event(
    store: EventStore,
) -> None:
    event = add_one(store, ProcItemAdded)
    with pytest.raises(ProcessingError) as caught:
        run(Failing(), store, event)
    err = caught.value
    assert (err.processor, err.event_id, err.event_type, err.event_uuid) == (
        "failing_one", event.id, "proc_item_added", event.uuid,
    )


def test_the_processing_error_keeps_the_original_as_its_cause(store: EventStore) -> None:
    with pytest.raises(ProcessingError) as caught:
        run(Failing(), store, add_one(store, ProcItemAdded))
    assert isinstance(caught.value.__cause__, KeyError)


def test_the_processing_error_message_reads_well(store: EventStore) -> None:
    event = add_one(store, ProcItemAdded)
    with pytest.raises(ProcessingError) as caught:
        run(Failing(), store, event)
    assert str(caught.value) == (
        f"processor 'failing_one' failed on event {event.id} (proc_item_added, aggregate "
        f"{event.aggregate_id}, uuid {event.uuid}): KeyError: 'title'"
    )


def test_the_processing_error_survives_pickling(store: EventStore) -> None:
    with pytest.raises(ProcessingError) as caught:
        run(Failing(), store, add_one(store, ProcItemAdded))
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.processor, copy.event_type) == ("failing_one", "proc_item_added")


def test_a_table_created_without_if_not_exists_is_refused() -> None:
    with pytest.raises(TypeError, match="IF NOT EXISTS"):

        class Bad(Projector):
            tables = {"bad": "CREATE TABLE bad (x INTEGER)"}


def test_a_bad_table_name_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid SQL identifier"):

        class Bad(Projector):
            tables = {"bad name": "CREATE TABLE IF NOT EXISTS x (y INTEGER)"}


def test_a_batch_size_below_one_is_refused() -> None:
    with pytest.raises(TypeError, match="batch_size"):

        class Bad(Processor):
            batch_size = 0
