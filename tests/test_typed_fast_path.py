"""The typed write path's fast path (esctl_lib.typed.dump_body): a typed body is dumped once
to JSON text that the store keeps as it is, only when the text shows it passes
validate_body; anything else takes the checked dict path and is refused, naming the field,
with nothing written. Run against real SQLite files, PostgreSQL and the memory store."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel, ConfigDict

from esctl_lib import (
    Event,
    EventRegistry,
    EventStore,
    InvalidEventError,
    StoreError,
    open_store,
)
from esctl_lib.serialization import MAX_DEPTH, CheckedJSON
from esctl_lib.typed import body_flags

AGG = "0d6e0c2e-8a4f-4d3e-9b9e-3f1f2a6c7d10"
DSN = "postgresql://postgres@127.0.0.1:5432/test"
PLACED = dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
CUSTOMER = uuid.UUID("11111111-2222-4333-8444-555555555555")


class Line(BaseModel):
    model_config = ConfigDict(frozen=True)
    sku: str
    qty: int


class OrderBody(BaseModel):
    model_config = ConfigDict(frozen=True)
    title: str
    total: Decimal
    placed_at: dt.datetime
    due: dt.date | None = None
    customer: uuid.UUID
    count: int = 0
    lines: list[Line] = []


class Measured(BaseModel):
    weight: float
    note: str | None = None


class Node(BaseModel):
    child: Node | None = None


class Loose(BaseModel):
    extra: Any = None


reg = EventRegistry()


class Ordered(Event, type_name="fast_ordered", body=OrderBody, registry=reg):
    pass


class Weighed(Event, type_name="fast_weighed", body=Measured, registry=reg):
    pass


class Nested(Event, type_name="fast_nested", body=Node, registry=reg):
    pass


class Free(Event, type_name="fast_free", body=Loose, registry=reg):
    pass


def order(**changes: Any) -> OrderBody:
    values: dict[str, Any] = {
        "title": "Pens \u00e9\u2028", "total": Decimal("12.50"), "placed_at": PLACED,
        "due": dt.date(2024, 6, 1), "customer": CUSTOMER, "count": 3,
        "lines": [Line(sku="p-1", qty=2), Line(sku="p-2", qty=1)]}
    values.update(changes)
    return OrderBody(**values)


@pytest.fixture(params=["sqlite", "memory", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    schema = None
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'fast.db'}", registry=reg)
    elif request.param == "memory":
        s = open_store("memory://", registry=reg)
    else:
        schema = f"fast_typed_{uuid.uuid4().hex[:8]}"
        s = open_store(DSN, schema=schema, registry=reg)
    s.setup()
    try:
        yield s
    finally:
        s.close()
        if schema is not None:
            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_a_plain_typed_body_is_kept_as_checked_json_text() -> None:
    event = Ordered(aggregate_id=AGG, body=order())
    assert event._f[4].__class__ is CheckedJSON
    assert event.body == OrderBody.__pydantic_serializer__.to_python(order(), mode="json")


def test_decimal_datetime_uuid_and_nested_models_round_trip(store: EventStore) -> None:
    stored = store.append([Ordered(aggregate_id=AGG, body=order())], expected_version=0)
    [read] = store.read_aggregate(AGG)
    for event in (stored[0], read):
        assert isinstance(event, Ordered)
        data = event.data
        assert isinstance(data, OrderBody)
        assert (data.total, data.placed_at, data.customer) == (Decimal("12.50"), PLACED, CUSTOMER)
        assert data.due == dt.date(2024, 6, 1)
        assert data.lines == [Line(sku="p-1", qty=2), Line(sku="p-2", qty=1)]
        assert data.title == "Pens \u00e9\u2028"
        assert event.body["total"] == "12.50"
        assert event.body["placed_at"] == "2024-05-01T12:30:15.123456Z"
        assert event.body["lines"][1] == {"sku": "p-2", "qty": 1}


def test_a_dict_body_is_validated_then_takes_the_same_path(store: EventStore) -> None:
    body = {"title": "t", "total": "1.5", "placed_at": PLACED.isoformat(),
            "customer": str(CUSTOMER)}
    event = Ordered(aggregate_id=AGG, body=body)
    assert event._f[4].__class__ is CheckedJSON
    store.append([event], expected_version=0)
    [read] = store.read_aggregate(AGG)
    assert read.data.total == Decimal("1.5")
    with pytest.raises(InvalidEventError, match=r"fast_ordered: body\.customer: "):
        Ordered(aggregate_id=AGG, body={**body, "customer": "nope"})


@pytest.mark.parametrize(("event", "field"), [
    (lambda: Ordered(aggregate_id=AGG, body=order(title="a\x00b")), r"body\.title"),
    (lambda: Ordered(aggregate_id=AGG, body=order(count=2**63)), r"body\.count"),
    (lambda: Ordered(aggregate_id=AGG, body=order(count=-(2**63))), r"body\.count"),
    (lambda: Ordered(aggregate_id=AGG, body=order(lines=[Line(sku="x", qty=10**30)])),
     r"body\.lines\[0\]\.qty"),
    (lambda: Ordered(aggregate_id=AGG, body=order(title="a\ud800b")), r"body\.title"),
    # (the body encoder names the path from "$")
    (lambda: Weighed(aggregate_id=AGG, body=Measured(weight=float("inf"))), r"\$\.weight"),
    (lambda: Weighed(aggregate_id=AGG, body=Measured(weight=float("nan"))), r"\$\.weight"),
    (lambda: Free(aggregate_id=AGG, body=Loose(extra={"k": ["a\x00"]})),
     r"body\.extra\.k\[0\]"),
], ids=["nul", "int-too-big", "int-too-small", "nested-int", "surrogate", "inf", "nan",
        "any-nul"])
def test_a_body_no_store_can_keep_is_refused_naming_it_and_nothing_is_written(
        store: EventStore, event: Any, field: str) -> None:
    made = event()
    assert made._f[4].__class__ is not CheckedJSON
    with pytest.raises(InvalidEventError, match=field):
        store.append([made], expected_version=0)
    assert store.read_aggregate(AGG) == []


def test_too_deep_a_body_is_refused(store: EventStore) -> None:
    node = Node()
    for _ in range(MAX_DEPTH + 2):
        node = Node(child=node)
    made = Nested(aggregate_id=AGG, body=node)
    assert made._f[4].__class__ is not CheckedJSON
    with pytest.raises(InvalidEventError, match="nested deeper than"):
        store.append([made], expected_version=0)
    assert store.read_aggregate(AGG) == []


def test_values_that_only_look_suspect_are_kept_exactly(store: EventStore) -> None:
    events = [
        Ordered(aggregate_id=AGG, body=order(count=2**63 - 1, title="1234567890123456789012")),
        Ordered(aggregate_id=AGG, body=order(title="back\\slash \\u0000 and \"quotes\"\n")),
        Weighed(aggregate_id=AGG, body=Measured(weight=2.5, note=None)),
        Nested(aggregate_id=AGG, body=Node(child=Node(child=Node()))),
        Free(aggregate_id=AGG, body=Loose(extra={"k": [1, "two", None, 2.5]})),
    ]
    store.append(events, expected_version=0)
    read = store.read_aggregate(AGG)
    assert [e.data for e in read] == [e.data for e in events]
    assert [e.body for e in read] == [e.body for e in events]
    assert read[0].data.count == 2**63 - 1
    assert read[1].data.title == "back\\slash \\u0000 and \"quotes\"\n"


def test_exclude_unset_with_the_fast_path() -> None:
    class Patch(BaseModel):
        note: str | None = None
        qty: int | None = None

    class Patched(Event, type_name="fast_patched", body=Patch, registry=EventRegistry()):
        body_exclude_unset = True

    event = Patched(aggregate_id=AGG, body={"qty": 2})
    assert event._f[4].__class__ is CheckedJSON
    assert event.body == {"qty": 2}


def test_replace_keeps_the_text_and_model_and_revalidates_for_another_class() -> None:
    event = Ordered(aggregate_id=AGG, body=order())
    copy = event.replace(correlation_id=CUSTOMER)
    assert copy._f[4].__class__ is CheckedJSON
    assert copy.data is event.data
    assert copy.correlation_id == str(CUSTOMER)

    class Other(BaseModel):
        title: int

    class OtherEvent(Event, type_name="fast_other", body=Other, registry=EventRegistry()):
        pass

    with pytest.raises(InvalidEventError, match=r"fast_other: body\.title: "):
        event.replace(event_class=OtherEvent)
    untyped = event.replace(event_class=Event, type="fast_plain")
    assert untyped.body == event.body


def test_body_flags_read_the_schema() -> None:
    assert body_flags(OrderBody) == (False, True, False)
    assert body_flags(Line) == (False, True, False)
    assert body_flags(Measured) == (True, False, False)
    assert body_flags(Node)[2] is True  # recursive: nesting not bounded
    assert body_flags(Loose) == (True, True, True)  # Any: anything


def test_stored_text_is_validated_in_one_pass_and_bad_text_fails_as_before() -> None:
    text = Ordered(aggregate_id=AGG, body=order()).body
    good = Ordered.from_stored(7, str(CUSTOMER), AGG, "fast_ordered",
                               json.dumps(text), 1, PLACED, None, None, None)
    assert good.data == order()
    wrong = Ordered.from_stored(8, str(CUSTOMER), AGG, "fast_ordered",
                                json.dumps({**text, "count": "many"}), 1, PLACED, None,
                                None, None)
    with pytest.raises(InvalidEventError, match=r"event 8 \(fast_ordered, .*body\.count: "):
        _ = wrong.data
    broken = Ordered.from_stored(9, str(CUSTOMER), AGG, "fast_ordered", '{"title": ',
                                 1, PLACED, None, None, None)
    with pytest.raises(StoreError, match="not readable JSON"):
        _ = broken.data


def test_a_typed_class_with_its_own_init_is_validated_through_super() -> None:
    class Stamped(Event, type_name="fast_stamped", body=Line, registry=EventRegistry()):
        def __init__(self, **fields: Any) -> None:
            fields.setdefault("metadata", {"source": "test"})
            super().__init__(**fields)

    event = Stamped(aggregate_id=AGG, body={"sku": "a", "qty": "2"})
    assert event.data == Line(sku="a", qty=2)
    assert event.metadata == {"source": "test"}
    with pytest.raises(InvalidEventError, match=r"fast_stamped: body\.qty: "):
        Stamped(aggregate_id=AGG, body={"sku": "a", "qty": "two"})


def test_a_slotted_typed_class_keeps_its_model() -> None:
    class Slotted(Event, type_name="fast_slotted", body=Line, registry=EventRegistry()):
        __slots__ = ()

    event = Slotted(aggregate_id=AGG, body=Line(sku="a", qty=1))
    assert event.data is event.data
    assert event.replace(correlation_id=CUSTOMER).data is event.data
