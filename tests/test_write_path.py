"""The append hot path of issue 15: new uuids, canonical uuids unparsed, and bodies checked
(and dumped) in one pass. Every fast path gives what the full path gives, and leaves
every refusal to it (same error, same message)."""

from __future__ import annotations

import json
import math
import os
import uuid
from typing import Any

import pytest

from esctl_lib import Event, InvalidEventError, SerializationError, default_encoder
from esctl_lib.events import new_uuid, normalize_uuid
from esctl_lib.serialization import BodyEncoder, checked_copy, is_plain, validate_body
from esctl_lib.stores.encoding import dump_checked, dump_json, encode_checked


class WriteItemAdded(Event, type_name="write_item_added"):
    pass


def test_new_uuids_are_canonical_version_7_unique_and_time_ordered() -> None:
    made = [new_uuid() for _ in range(20_000)]
    assert len(set(made)) == len(made)
    for text in made[:2000]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    # 48 bits of milliseconds first: uuids made later sort later, millisecond by millisecond
    millis = [int(u.replace("-", "")[:12], 16) for u in made]
    assert millis == sorted(millis)


def test_events_get_new_uuids() -> None:
    a, b = (WriteItemAdded(aggregate_id=uuid.uuid4()) for _ in range(2))
    assert a.uuid != b.uuid and uuid.UUID(a.uuid).version == 7


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_never_hands_out_the_parents_uuids() -> None:
    new_uuid()  # the pool holds uuids made ahead now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next uuids, then leave at once
        os.close(read)
        os.write(write, ",".join(new_uuid() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        child = set(f.read().split(","))
    os.waitpid(pid, 0)
    parent = {new_uuid() for _ in range(300)}
    assert len(child) == 50 and not child & parent


@pytest.mark.parametrize("value", [
    "0190a0b0-c0d0-7e0f-8a1b-2c3d4e5f6a7b",
    "0190A0B0-C0D0-7E0F-8A1B-2C3D4E5F6A7B",
    "{0190a0b0-c0d0-7e0f-8a1b-2c3d4e5f6a7b}",
    "0190a0b0c0d07e0f8a1b2c3d4e5f6a7b",
    uuid.UUID("0190a0b0-c0d0-7e0f-8a1b-2c3d4e5f6a7b"),
])
def test_normalize_uuid_gives_the_canonical_form(value: Any) -> None:
    assert normalize_uuid(value, "x") == "0190a0b0-c0d0-7e0f-8a1b-2c3d4e5f6a7b"


@pytest.mark.parametrize("value", [
    "0190a0b0-c0d0-7e0f-8a1b-2c3d4e5f6a7", "0190a0b0-c0d0-7e0f-8a1b-2c3d4e5f6a7b\n",
    "0190a0b0-c0d0-7e0f-8a1b-2c3d4e5f6a7g", "", 5, None, b"0" * 16,
])
def test_normalize_uuid_still_refuses_what_is_not_a_uuid(value: Any) -> None:
    with pytest.raises(InvalidEventError, match="must be a UUID"):
        normalize_uuid(value, "aggregate_id")


PLAIN = [
    {},
    {"title": "Item 00000001 title", "n": 1, "amount": 1234.56, "tags": ["red", "blue"],
     "ok": True},
    {"a": None, "b": False, "c": -(2**63) + 1, "d": 2**63 - 1, "e": 0.0, "f": -1e308},
    {"é": "ünïcode ✓ \u2028", "nested": {"x": [1, [2, [3, {"y": "z"}]]], "e": {}}, "l": []},
]


@pytest.mark.parametrize("body", PLAIN)
def test_a_plain_body_is_copied_as_the_full_encoder_would(body: dict[str, Any]) -> None:
    assert is_plain(body)
    copy = checked_copy(body)
    assert copy == default_encoder.encode_body(body)
    assert copy is not body
    for key, value in body.items():  # containers are copies, not shared
        if isinstance(value, dict | list):
            assert copy is not None and copy[key] is not value
    assert dump_json(body) == json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def deep(levels: int) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(levels - 1):
        body = {"k": body}
    return body


HOSTILE: list[tuple[dict[Any, Any], type[Exception], str]] = [
    ({"a": "x\x00y"}, InvalidEventError, "\\\\u0000"),
    ({"a\x00": 1}, InvalidEventError, "\\\\u0000"),
    ({"a": "\ud800"}, InvalidEventError, "surrogate"),
    ({"\udfff": 1}, InvalidEventError, "surrogate"),
    ({"a": ["ok", "\ud800"]}, InvalidEventError, "surrogate"),
    ({"a": 2**63}, InvalidEventError, "out of range"),
    ({"a": [-(2**63)]}, InvalidEventError, "out of range"),
    ({"a": math.nan}, SerializationError, "non-finite"),
    ({"a": [math.inf]}, SerializationError, "non-finite"),
    ({"a": {"b": -math.inf}}, SerializationError, "non-finite"),
    ({1: "x"}, SerializationError, "not a string"),
    ({"a": {(1, 2): "x"}}, SerializationError, "not a string"),
    (deep(65), SerializationError, "nested deeper than 64"),
]


@pytest.mark.parametrize(("body", "error", "match"), HOSTILE)
def test_the_fast_path_leaves_every_refusal_to_the_full_path(
    body: dict[Any, Any], error: type[Exception], match: str
) -> None:
    assert not is_plain(body) and checked_copy(body) is None
    event = WriteItemAdded(aggregate_id=uuid.uuid4(), body=body)
    with pytest.raises(error, match=match) as fast:
        encode_checked(event, default_encoder.encode_body)
    with pytest.raises(error, match=match) as text:
        dump_checked(event, default_encoder.encode_body)
    with pytest.raises(error) as full:  # what the path without a shortcut says
        validate_body(default_encoder.encode_body(body))
    assert str(fast.value) == str(text.value) == str(full.value)


def test_deep_but_legal_bodies_take_the_full_path_and_pass() -> None:
    body = deep(64)
    assert not is_plain(body)  # deeper than the fast path follows
    event = WriteItemAdded(aggregate_id=uuid.uuid4(), body=body)
    encoded, _ = encode_checked(event, default_encoder.encode_body)
    assert encoded == body
    assert json.loads(dump_checked(event, default_encoder.encode_body)[0]) == body


def test_values_that_need_encoding_still_go_through_the_encoder() -> None:
    import datetime as dt
    from decimal import Decimal

    body = {"when": dt.datetime(2024, 1, 2, tzinfo=dt.UTC), "price": Decimal("1.10"),
            "ids": (1, 2), "flag": True}
    event = WriteItemAdded(aggregate_id=uuid.uuid4(), body=body)
    expected = {"when": "2024-01-02T00:00:00.000000+00:00", "price": "1.10", "ids": [1, 2],
                "flag": True}
    assert encode_checked(event, default_encoder.encode_body)[0] == expected
    assert json.loads(dump_checked(event, default_encoder.encode_body)[0]) == expected


def test_a_subclassed_encoder_is_always_called() -> None:
    class Upper(BodyEncoder):
        def encode_body(self, body: Any) -> dict[str, Any]:
            return {k: v.upper() if isinstance(v, str) else v
                    for k, v in super().encode_body(body).items()}

    event = WriteItemAdded(aggregate_id=uuid.uuid4(), body={"a": "x"})
    assert encode_checked(event, Upper().encode_body)[0] == {"a": "X"}
    assert dump_checked(event, Upper().encode_body)[0] == '{"a":"X"}'


def test_metadata_is_checked_and_dumped_too() -> None:
    event = WriteItemAdded(aggregate_id=uuid.uuid4(), metadata={"tenant": "t", "n": 1})
    assert dump_checked(event, default_encoder.encode_body) == ("{}", '{"tenant":"t","n":1}')
    bad = WriteItemAdded(aggregate_id=uuid.uuid4(), metadata={"a": "\x00"})
    with pytest.raises(InvalidEventError, match="metadata"):
        dump_checked(bad, default_encoder.encode_body)
