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

from esctl_lib import BodyEncoder, InvalidEventError, SerializationError, validate_body
from esctl_lib.serialization import MAX_DEPTH, MAX_INT


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


# -- validate_body: the one rule for what a stored body may hold ---------------------------
def nested(depth: int) -> dict[str, object]:
    body: dict[str, object] = {}
    inner = body
    for _ in range(depth - 1):
        inner["x"] = {}
        inner = inner["x"]  # type: ignore[assignment]
    return body


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"title": "a\x00b"}, r"body\.title: contains \\u0000"),
        ({"tags": ["ok", "\x00"]}, r"body\.tags\[1\]"),
        ({"a\x00": 1}, r"body \(key"),
        ({"t": {"x": "\ud800"}}, r"body\.t\.x: not valid Unicode"),
        ({"n": MAX_INT}, r"body\.n: integer"),
        ({"n": -MAX_INT}, r"body\.n: integer"),
        ({"f": float("inf")}, r"body\.f: inf is not a finite number"),
        ({"f": [float("nan")]}, r"body\.f\[0\]: nan"),
        ({"d": {1: "x"}}, r"body\.d: key 1 is not a string"),
        ({"o": object()}, r"body\.o: object is not a JSON value"),
    ],
)
def test_validate_body_refuses_what_a_store_cannot_keep_naming_the_path(
    body: dict[str, object], where: str
) -> None:
    with pytest.raises(InvalidEventError, match=where):
        validate_body(body)


def test_validate_body_names_the_field_it_is_given() -> None:
    with pytest.raises(InvalidEventError, match=r"^metadata\.who"):
        validate_body({"who": "\x00"}, field="metadata")


def test_a_number_parsed_as_infinity_is_refused() -> None:
    with pytest.raises(InvalidEventError, match="finite"):
        validate_body(json.loads('{"big": 1e400}'))


def test_nesting_is_allowed_up_to_the_limit_and_refused_past_it() -> None:
    validate_body(nested(MAX_DEPTH))
    with pytest.raises(InvalidEventError, match=f"deeper than {MAX_DEPTH}"):
        validate_body(nested(MAX_DEPTH + 1))


def test_the_largest_integers_and_plain_unicode_pass() -> None:
    validate_body({"n": MAX_INT - 1, "m": -(MAX_INT - 1), "s": "héllo ✓ 😀", "b": True,
                   "none": None, "f": 1.5, "l": [1, "x", {"k": []}]})


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_every_body_of_storable_json_values_passes(body: dict[str, object]) -> None:
    def storable(value: object) -> bool:
        if isinstance(value, str):
            return "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
        if isinstance(value, bool) or value is None or isinstance(value, float):
            return True
        if isinstance(value, int):
            return abs(value) < MAX_INT
        if isinstance(value, list):
            return all(storable(v) for v in value)
        assert isinstance(value, dict)
        return all(storable(k) and storable(v) for k, v in value.items())

    if storable(body):
        validate_body(body)
    else:
        with pytest.raises(InvalidEventError):
            validate_body(body)
