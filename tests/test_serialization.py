"""Body encoding: built-in types, registered encoders, and errors naming the key path."""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esctl_lib import BodyEncoder, SerializationError


class Colour(enum.Enum):
    RED = "red"


def test_builtin_types_encode_to_json_values() -> None:
    ident = uuid.uuid4()
    body = {
        "price": Decimal("0.10"),
        "at": dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "naive": dt.datetime(2024, 1, 2, 3, 4, 5),
        "day": dt.date(2024, 2, 29),
        "id": ident,
        "colour": Colour.RED,
        "tags": ("a", "b"),
        "nested": [{"d": Decimal("1E+2")}],
    }
    assert BodyEncoder().encode_body(body) == {
        "price": "0.10",
        "at": "2024-01-02T03:04:05.000006+02:00",
        "naive": "2024-01-02T03:04:05.000000+00:00",
        "day": "2024-02-29",
        "id": str(ident),
        "colour": "red",
        "tags": ["a", "b"],
        "nested": [{"d": "1E+2"}],
    }


def test_applications_register_their_own_encoders() -> None:
    class Money:
        def __init__(self, cents: int) -> None:
            self.cents = cents

    encoder = BodyEncoder().register(Money, lambda m: {"cents": m.cents})
    assert encoder.encode_body({"total": Money(150)}) == {"total": {"cents": 150}}


def test_an_unknown_type_is_rejected_naming_the_key_path() -> None:
    with pytest.raises(SerializationError) as caught:
        BodyEncoder().encode_body({"order": {"lines": [1, object()]}})
    assert caught.value.path == "$.order.lines[1]"
    assert "object is not JSON serializable" in str(caught.value)


def test_non_string_keys_are_rejected() -> None:
    with pytest.raises(SerializationError, match="key 1"):
        BodyEncoder().encode_body({"a": {1: "x"}})


def test_non_finite_numbers_are_rejected() -> None:
    with pytest.raises(SerializationError, match=r"\$\.x"):
        BodyEncoder().encode_body({"x": float("nan")})
    with pytest.raises(SerializationError):
        BodyEncoder().encode_body({"x": Decimal("Infinity")})


def test_a_body_that_is_not_a_mapping_is_rejected() -> None:
    with pytest.raises(SerializationError):
        BodyEncoder().encode_body([1, 2])  # type: ignore[arg-type]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_json_bodies_round_trip_unchanged(body: dict[str, object]) -> None:
    encoder = BodyEncoder()
    assert json.loads(encoder.dumps(body)) == body


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimals_round_trip_exactly(value: Decimal) -> None:
    assert Decimal(BodyEncoder().encode_body({"v": value})["v"]) == value


@given(st.datetimes(timezones=st.just(dt.UTC)))
def test_datetimes_round_trip_with_microseconds(value: dt.datetime) -> None:
    encoded = BodyEncoder().encode_body({"v": value})["v"]
    assert dt.datetime.fromisoformat(encoded) == value
