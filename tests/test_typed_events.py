"""Typed event bodies (esctl_lib.typed): validated when made, the model as ``event.data``,
the JSON dict as ``event.body``, validated after the upcasters when read."""

from __future__ import annotations

import datetime as dt
import pickle
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest
from pydantic import BaseModel, ConfigDict

from esctl_lib import Event, EventRegistry, EventStore, InvalidEventError, open_store
from esctl_lib.typed import body_model_of

AGG = "5b6e0c2e-8a4f-4d3e-9b9e-3f1f2a6c7d10"


class Line(BaseModel):
    model_config = ConfigDict(frozen=True)
    sku: str
    qty: int


class OrderPlacedBody(BaseModel):
    model_config = ConfigDict(frozen=True)
    title: str
    total: Decimal
    placed_at: dt.datetime
    customer: uuid.UUID
    lines: list[Line] = []


class PatchBody(BaseModel):
    note: str | None = None
    qty: int | None = None


reg = EventRegistry()


class OrderPlaced(Event, type_name="typed_order_placed", body=OrderPlacedBody, registry=reg):
    pass


class OrderPatched(Event, type_name="typed_order_patched", body=PatchBody, registry=reg):
    body_exclude_unset = True


class Untyped(Event, type_name="typed_untyped", registry=reg):
    pass


CUSTOMER = uuid.UUID("11111111-2222-4333-8444-555555555555")
PLACED = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)


def placed_body(**changes: object) -> dict[str, object]:
    return {"title": "Pens", "total": "12.50", "placed_at": PLACED.isoformat(),
            "customer": str(CUSTOMER), "lines": [{"sku": "p-1", "qty": 2}], **changes}


@pytest.fixture
def store() -> EventStore:
    s = open_store("memory://", registry=reg)
    s.setup()
    return s


def test_a_typed_event_from_a_dict_is_validated_and_restores_types() -> None:
    event = OrderPlaced(aggregate_id=AGG, body=placed_body())
    data = event.data
    assert isinstance(data, OrderPlacedBody)
    assert (data.total, data.placed_at, data.customer) == (Decimal("12.50"), PLACED, CUSTOMER)
    assert data.lines == [Line(sku="p-1", qty=2)]


def test_the_body_stays_the_json_dict_of_the_model() -> None:
    event = OrderPlaced(aggregate_id=AGG, body=OrderPlacedBody.model_validate(placed_body()))
    assert event.body == {"title": "Pens", "total": "12.50", "placed_at": "2024-05-01T12:30:00Z",
                          "customer": str(CUSTOMER), "lines": [{"sku": "p-1", "qty": 2}]}


def test_a_model_passed_in_is_kept_as_the_data() -> None:
    model = OrderPlacedBody.model_validate(placed_body())
    assert OrderPlaced(aggregate_id=AGG, body=model).data is model


def test_a_missing_field_is_refused_naming_type_and_field() -> None:
    with pytest.raises(InvalidEventError, match=r"^typed_order_placed: body\.title: field required$"):
        OrderPlaced(aggregate_id=AGG, body={k: v for k, v in placed_body().items() if k != "title"})


def test_a_nested_bad_value_names_its_path() -> None:
    with pytest.raises(InvalidEventError, match=r"body\.lines\.0\.qty: input should be a valid"):
        OrderPlaced(aggregate_id=AGG, body=placed_body(lines=[{"sku": "x", "qty": "many"}]))


def test_a_body_that_is_neither_model_nor_mapping_is_refused() -> None:
    with pytest.raises(InvalidEventError, match="body must be a OrderPlacedBody or a mapping"):
        OrderPlaced(aggregate_id=AGG, body=[1, 2])  # type: ignore[arg-type]


def test_body_must_name_a_pydantic_model() -> None:
    with pytest.raises(InvalidEventError, match="must be a pydantic model class"):
        class Wrong(Event, type_name="typed_wrong", body=dict, registry=EventRegistry()):
            pass


def test_exclude_unset_stores_only_the_fields_given() -> None:
    event = OrderPatched(aggregate_id=AGG, body={"qty": 3})
    assert event.body == {"qty": 3}
    assert (event.data.qty, event.data.note) == (3, None)


def test_untyped_events_keep_plain_dict_bodies() -> None:
    event = Untyped(aggregate_id=AGG, body={"anything": [1, {"x": None}]})
    assert body_model_of(Untyped) is None
    assert event.data == event.body == {"anything": [1, {"x": None}]}


def test_replace_validates_the_new_body() -> None:
    event = OrderPlaced(aggregate_id=AGG, body=placed_body())
    assert event.replace(body=placed_body(title="Ink")).data.title == "Ink"
    with pytest.raises(InvalidEventError, match=r"body\.total"):
        event.replace(body=placed_body(total="lots"))


def test_a_subclass_of_a_typed_event_is_typed_too() -> None:
    class Special(OrderPlaced, type_name="typed_special", registry=EventRegistry()):
        pass

    assert Special(aggregate_id=AGG, body=placed_body()).data.total == Decimal("12.50")
    with pytest.raises(InvalidEventError, match=r"typed_special: body\.title"):
        Special(aggregate_id=AGG, body={})


def test_a_typed_event_pickles_and_revalidates_its_data() -> None:
    event = OrderPlaced(aggregate_id=AGG, body=placed_body())
    again = pickle.loads(pickle.dumps(event))
    assert (again, again.body, again.data) == (event, event.body, event.data)


def test_a_stored_typed_event_reads_back_with_its_model(store: EventStore) -> None:
    store.append([OrderPlaced(aggregate_id=AGG, body=placed_body())])
    [event] = store.read_aggregate(AGG)
    assert isinstance(event, OrderPlaced)
    assert event.data.customer == CUSTOMER
    assert event.data is event.data  # validated once, then kept


def test_a_stored_body_that_does_not_fit_fails_when_its_data_is_read(store: EventStore) -> None:
    [stored] = store.append([Event(type="typed_order_placed", aggregate_id=AGG, body={"x": 1})])
    [event] = store.read_aggregate(AGG)
    assert event.body == {"x": 1}  # the raw body still reads (tail, export, repairs)
    with pytest.raises(InvalidEventError) as info:
        _ = event.data
    assert str(info.value).startswith(
        f"event {stored.id} (typed_order_placed, uuid {stored.uuid}): body.title: field required")


def test_upcasters_run_before_validation_even_through_intermediate_shapes() -> None:
    registry = EventRegistry()

    class V3Body(BaseModel):
        name: str
        size: int

    class Sized(Event, type_name="typed_sized", body=V3Body, registry=registry):
        pass

    @Sized.upcaster
    def rename(event: Event) -> Event:  # v1 → v2: title became name (still no size)
        body = dict(event.body)
        if "title" in body:
            body["name"] = body.pop("title")
        return event.replace(body=body)

    @Sized.upcaster
    def add_size(event: Event) -> Event:  # v2 → v3: size added
        return event.replace(body={"size": 1, **event.body})

    registry.add_upcaster("typed_sized_old", lambda e: e.replace(event_class=Sized))
    store = open_store("memory://", registry=registry)
    store.setup()
    store.append([Event(type="typed_sized", aggregate_id=AGG, body={"title": "a"})])
    store.append([Event(type="typed_sized_old", aggregate_id=AGG, body={"title": "b"})])
    events = store.read_aggregate(AGG)
    assert [(type(e), e.data.name, e.data.size) for e in events] == [(Sized, "a", 1),
                                                                     (Sized, "b", 1)]


def test_importing_the_library_does_not_import_pydantic() -> None:
    code = "import sys, esctl_lib; assert 'pydantic' not in sys.modules, 'pydantic loaded'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_copy_that_keeps_the_body_keeps_the_model() -> None:
    event = OrderPlaced(aggregate_id=AGG, body=placed_body())
    copy = event.replace(correlation_id=CUSTOMER)
    assert copy.data is event.data
    assert copy.correlation_id == str(CUSTOMER)
