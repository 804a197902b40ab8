"""Events: naming, the registry, immutability, equality, copies and upcasting."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import uuid

import pytest

from esctl_lib import (
    DuplicateEventTypeError,
    Event,
    EventRegistry,
    InvalidEventError,
    StoreError,
    open_store,
    type_name_for,
)

AGG = "6f1c1f5e-7d2a-4e43-9b0e-1a2b3c4d5e6f"


class EvItemAdded(Event, type_name="ev_item_added"):
    pass


@pytest.mark.parametrize(
    ("class_name", "type_name"),
    [("TodoAdded", "todo_added"), ("SMSSent", "sms_sent"),
     ("HTTPRequestSent", "http_request_sent"), ("ItemV2Added", "item_v2_added"),
     ("Todo", "todo")],
)
def test_type_names_derive_from_class_names(class_name: str, type_name: str) -> None:
    assert type_name_for(class_name) == type_name


def test_acronym_types_round_trip_through_the_registry() -> None:
    registry = EventRegistry()

    class SMSSent(Event, registry=registry):
        pass

    assert SMSSent.type_name == "sms_sent"
    assert registry.class_for("sms_sent") is SMSSent


def test_a_class_may_declare_its_own_type_name_and_aliases() -> None:
    registry = EventRegistry()

    class Renamed(Event, registry=registry, type_name="ev_renamed", aliases=("ev_old_name",)):
        pass

    assert Renamed(aggregate_id=AGG).type == "ev_renamed"
    assert registry.class_for("ev_old_name") is Renamed
    assert registry.names() == ["ev_renamed"]


def test_a_duplicate_type_name_fails_at_definition_time() -> None:
    registry = EventRegistry()

    class First(Event, registry=registry, type_name="ev_taken"):
        pass

    with pytest.raises(DuplicateEventTypeError, match="ev_taken"):
        class Second(Event, registry=registry, type_name="ev_taken"):
            pass


def test_an_invalid_type_name_is_rejected() -> None:
    with pytest.raises(InvalidEventError):
        class Bad(Event, registry=EventRegistry(), type_name="Has Spaces"):
            pass


@pytest.mark.parametrize(
    "name",
    ["ev_line\n", "ev_\nsplit", "ev_\x1b[31mred", "ev\x00nul", "9starts_with_digit",
     "_private", "x" * 101, "ev tab\t"],
)
def test_a_type_name_with_control_characters_or_out_of_pattern_fails_at_definition(
    name: str,
) -> None:
    with pytest.raises(InvalidEventError, match="invalid event type name"):
        class Bad(Event, registry=EventRegistry(), type_name=name):
            pass


def test_an_alias_with_a_newline_fails_at_definition() -> None:
    with pytest.raises(InvalidEventError, match="invalid event type name"):
        class Bad(Event, registry=EventRegistry(), type_name="ev_fine", aliases=("ev_old\n",)):
            pass


@pytest.mark.parametrize("name", ["a", "ev.item_added", "billing/invoice-sent", "x" * 100])
def test_type_names_in_the_pattern_are_accepted(name: str) -> None:
    registry = EventRegistry()

    class Fine(Event, registry=registry, type_name=name):
        pass

    assert registry.class_for(name) is Fine


def test_an_imported_record_with_a_newline_in_its_type_is_refused() -> None:
    from esctl_lib import event_json
    from esctl_lib.operations.records import parse_record

    line = event_json(Event(aggregate_id=AGG, type="ev_fine", created_at=dt.datetime.now(dt.UTC),
                            version=1))
    parse_record(line, "line 1")
    with pytest.raises(InvalidEventError, match="line 2: invalid event type name"):
        parse_record(line.replace("ev_fine", "ev_fine\\nforged"), "line 2")


def test_from_stored_builds_the_event_as_given() -> None:
    created = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    event = EvItemAdded.from_stored(7, AGG, AGG, "ev_item_added", '{"n":1}', 3, created,
                                    None, None, None)
    assert (event.id, event.version, event.created_at) == (7, 3, created)
    assert event.body == {"n": 1}
    assert event.metadata == {}
    assert type(event) is EvItemAdded


def test_require_names_the_unknown_type() -> None:
    with pytest.raises(Exception, match="ev_nowhere"):
        EventRegistry().require("ev_nowhere")


def test_events_are_immutable() -> None:
    event = EvItemAdded(aggregate_id=AGG)
    with pytest.raises(AttributeError):
        event.type = "other"  # type: ignore[misc]


def test_events_are_equal_by_uuid_not_by_id() -> None:
    a = EvItemAdded(aggregate_id=AGG)
    b = EvItemAdded(aggregate_id=AGG)
    assert a != b
    assert a == a.replace(body={"changed": True})
    assert len({a, a.replace(id=5)}) == 1


def test_uuids_are_generated_and_lower_cased() -> None:
    given = str(uuid.uuid4()).upper()
    assert EvItemAdded(aggregate_id=AGG, uuid=given).uuid == given.lower()
    assert uuid.UUID(EvItemAdded(aggregate_id=AGG).uuid)


def test_a_uuid_object_is_accepted_as_aggregate_id() -> None:
    value = uuid.uuid4()
    assert EvItemAdded(aggregate_id=value).aggregate_id == str(value)


def test_a_non_uuid_aggregate_id_is_a_clear_error() -> None:
    with pytest.raises(InvalidEventError, match="aggregate_id must be a UUID"):
        EvItemAdded(aggregate_id="todo-1")


def test_a_typed_event_refuses_another_type() -> None:
    with pytest.raises(InvalidEventError):
        EvItemAdded(aggregate_id=AGG, type="something_else")


def test_an_untyped_event_needs_a_type() -> None:
    with pytest.raises(InvalidEventError):
        Event(aggregate_id=AGG)


def test_naive_created_at_is_taken_as_utc() -> None:
    event = EvItemAdded(aggregate_id=AGG, created_at=dt.datetime(2024, 1, 1, 12, 0, 0, 5))
    assert event.created_at == dt.datetime(2024, 1, 1, 12, 0, 0, 5, tzinfo=dt.UTC)


def test_replace_can_change_the_class() -> None:
    registry = EventRegistry()

    class Old(Event, registry=registry, type_name="ev_old"):
        pass

    class New(Event, registry=registry, type_name="ev_new"):
        pass

    moved = Old(aggregate_id=AGG, body={"a": 1}).replace(event_class=New)
    assert type(moved) is New and moved.type == "ev_new" and moved.body == {"a": 1}


def test_replace_rejects_unknown_fields() -> None:
    with pytest.raises(InvalidEventError, match="nope"):
        EvItemAdded(aggregate_id=AGG).replace(nope=1)


def test_events_pickle() -> None:
    event = EvItemAdded(aggregate_id=AGG, body={"a": [1, 2]}, id=3, version=1)
    again = pickle.loads(pickle.dumps(event))
    assert again.to_dict() == event.to_dict() and type(again) is EvItemAdded


def test_upcasters_change_old_bodies_on_every_read() -> None:
    registry = EventRegistry()

    class Titled(Event, registry=registry, type_name="ev_titled"):
        pass

    @Titled.upcaster
    def _name_to_title(event: Event) -> Event:
        if "name" in event.body:
            body = dict(event.body)
            body["title"] = body.pop("name")
            return event.replace(body=body)
        return event

    @Titled.upcaster
    def _default_priority(event: Event) -> Event:
        return event.replace(body={"priority": 1, **event.body})

    store = open_store("memory://", registry=registry)
    store.append([Titled(aggregate_id=AGG, body={"name": "old"})])
    event = store.read_after(0)[0]
    assert event.body == {"priority": 1, "title": "old"}
    assert store.read_aggregate(AGG)[0].body == event.body


def test_an_upcaster_maps_an_old_type_name_to_a_new_class() -> None:
    registry = EventRegistry()

    class Created(Event, registry=registry, type_name="ev_created"):
        pass

    def _rename(event: Event) -> Event:
        return Event(**{**event.to_dict(), "type": "ev_created"})

    registry.add_upcaster("ev_legacy_created", _rename)
    store = open_store("memory://", registry=registry)
    store.append([Event(aggregate_id=AGG, type="ev_legacy_created")])
    event = store.read_after(0)[0]
    assert type(event) is Created and event.type == "ev_created"


def test_an_alias_reads_back_as_the_current_class() -> None:
    registry = EventRegistry()

    class Current(Event, registry=registry, type_name="ev_current", aliases=("ev_before",)):
        pass

    store = open_store("memory://", registry=registry)
    store.append([Event(aggregate_id=AGG, type="ev_before")])
    event = store.read_after(0)[0]
    assert type(event) is Current and event.type == "ev_current"


@pytest.mark.parametrize(
    "text",
    ['{"a":1,"b":[true,null,"x"]}', ' {"a": 1, "b": [true, null, "x"]} ',
     '{"a": 1, "b": [true, null, "x"]}\n'],
)
def test_stored_json_text_decodes_lazily_whatever_its_whitespace(text: str) -> None:
    [event] = EventRegistry().decode_many(
        [(1, str(uuid.uuid4()), AGG, "ev_x", text, 1, "2026-01-01T00:00:00+00:00", None, None,
          text)])
    assert event.body == {"a": 1, "b": [True, None, "x"]}
    assert event.metadata == event.body
    assert event.body is event.body  # decoded once


@pytest.mark.parametrize("text", ['{"a": 1} trailing', '{"a": ', ""])
def test_malformed_stored_json_raises_a_store_error_from_the_json_error(text: str) -> None:
    [event] = EventRegistry().decode_many(
        [(1, str(uuid.uuid4()), AGG, "ev_x", text, 1, None, None, None, None)])
    with pytest.raises(StoreError) as caught:
        _ = event.body
    assert isinstance(caught.value.__cause__, json.JSONDecodeError)


def test_utc_stamp_is_the_isoformat_of_the_time_now() -> None:
    from esctl_lib.events import utc_now, utc_stamp

    for _ in range(3):
        before = utc_now()
        stamp = utc_stamp()
        after = utc_now()
        parsed = dt.datetime.fromisoformat(stamp)
        assert parsed.isoformat(timespec="microseconds") == stamp
        assert stamp.endswith("+00:00") and len(stamp) == 32
        assert before <= parsed <= after


def test_a_stored_sqlite_event_carries_the_time_it_was_stamped(tmp_path: object) -> None:
    from pathlib import Path

    from esctl_lib import open_store

    store = open_store(f"sqlite:///{Path(str(tmp_path)) / 'events.db'}")
    store.setup()
    try:
        agg = str(uuid.uuid4())
        before = dt.datetime.now(dt.UTC)
        one = store.append([Event(type="noted", aggregate_id=agg)], expected_version=0)[0]
        two = store.append([Event(type="noted", aggregate_id=agg) for _ in range(2)],
                           expected_version=1)
        after = dt.datetime.now(dt.UTC)
        for stored in (one, *two):
            assert isinstance(stored.created_at, dt.datetime)
            assert stored.created_at.tzinfo is not None
            assert before <= stored.created_at <= after
        read = list(store.read_aggregate(agg))
        assert [e.created_at for e in read] == [one.created_at, *(e.created_at for e in two)]
    finally:
        store.close()
