"""Hostile input, thrown at ``store.append`` (every backend) and at ``esctl import``: only the
library's own errors come out (the CLI: exit 2, one stderr line, no traceback), and the
store is left as it was (same count, same head)."""

from __future__ import annotations

import contextlib
import json
import math
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esctl_lib import EsctlError, Event, EventStore
from esctl_lib.events import TYPE_NAME_PATTERN
from tests.backends import backend_params, drop_schema
from tests.cli.conftest import Cli, make_backend

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
AGG = "0f1c1f5e-7d2a-4e43-9b0e-1a2b3c4d5e6f"
SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)


def nest(depth: int, leaf: Any = 1) -> Any:
    value: Any = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


# -- values no store may hold, as Python values -----------------------------------------------
hostile_leaves = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.integers(min_value=2**63, max_value=2**300),
    st.integers(max_value=-(2**63), min_value=-(2**300)),
    st.just(10**5000),
    st.text(max_size=5).map(lambda s: s + "\x00"),
    st.tuples(st.text(max_size=5), SURROGATES).map("".join),
    st.integers(65, 3000).map(nest),
    st.sampled_from([object(), b"bytes", {1: "int key"}, {("a",): 1}, {"k": {math.nan}}]),
    st.tuples(SURROGATES).map(lambda s: {s[0]: 1}),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.text(
        st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=6,
)


@st.composite
def hostile_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A valid body with one hostile value somewhere inside it."""
    body: dict[str, Any] = draw(st.dictionaries(st.text(max_size=5), json_values, max_size=3))
    leaf = draw(hostile_leaves)
    for _ in range(draw(st.integers(0, 3))):
        leaf = [leaf] if draw(st.booleans()) else {"in": leaf}
    body[draw(st.text(max_size=5))] = leaf
    return body


not_a_uuid = st.one_of(
    st.text(max_size=40).filter(lambda s: _not_uuid(s)),
    st.just("5b6e0c2e-8a4f-4d3e-9b9e-3f1f2a6c7d1" + "\ud800"),
    st.just("\x00" * 32), st.just(10**5000), st.just(b"\x00" * 16), st.just(3.5),
)
bad_type_names = st.one_of(
    st.text(max_size=120).filter(lambda s: not re.fullmatch(TYPE_NAME_PATTERN, s)),
    st.just("a" * 101), st.just("ok\nforged"), st.just("ok\x1b[31m"), st.just("x\ud800"),
    st.just(10**5000),
)


def _not_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return True
    return False


@st.composite
def hostile_events(draw: st.DrawFn) -> dict[str, Any]:
    """Fields for one Event, exactly one of them hostile."""
    fields: dict[str, Any] = {"type": "fuzzed", "aggregate_id": AGG, "body": {"ok": 1}}
    which = draw(st.sampled_from(["body", "metadata", "type", "aggregate_id", "uuid",
                                  "correlation_id", "causation_id"]))
    if which in ("body", "metadata"):
        fields[which] = draw(hostile_bodies())
    elif which == "type":
        fields["type"] = draw(bad_type_names)
    else:
        fields[which] = draw(not_a_uuid)
    return fields


def snapshot(store: EventStore) -> tuple[int, int]:
    return store.count(), store.latest_position()


@pytest.mark.parametrize("store_spec", backend_params(), indirect=True)
@FUZZ
@given(fields=hostile_events(), after_a_good_one=st.booleans())
def test_a_hostile_append_raises_a_library_error_and_writes_nothing(
        store: EventStore, fields: dict[str, Any], after_a_good_one: bool) -> None:
    before = snapshot(store)
    with pytest.raises(EsctlError):
        events = [Event(**fields)]
        if after_a_good_one:
            events.insert(0, Event(type="fuzzed", aggregate_id=events[0].aggregate_id))
        store.append(events)
    assert snapshot(store) == before


# -- hostile lines, as JSON text in an export file -----------------------------------------------
def deep_text(depth: int) -> str:
    return "[" * depth + "]" * depth


hostile_json = st.one_of(
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999", '"\\ud800"',
                     '"a\\u0000b"', '{"\\udc80": 1}', str(2**63), str(-(2**63))]),
    st.integers(4301, 6000).map(lambda n: "9" * n),
    st.integers(65, 20_000).map(deep_text),
)
hostile_fields = {
    "body": hostile_json.map(lambda v: f'{{"k": {v}}}'),
    "metadata": hostile_json.map(lambda v: f'{{"k": {v}}}'),
    "type": bad_type_names.filter(lambda t: isinstance(t, str)).map(json.dumps),
    "aggregate_id": not_a_uuid.filter(lambda t: isinstance(t, str)).map(json.dumps),
    "uuid": not_a_uuid.filter(lambda t: isinstance(t, str)).map(json.dumps),
    "version": st.sampled_from(["0", "-1", "2147483648", "1.5", '"1"', "true", "NaN",
                                "9" * 5000, deep_text(5000)]),
    "created_at": st.sampled_from(['"0001-01-01T00:00:00+01:00"', '"9999-12-31T23:59:59-01:00"',
                                   '"nope"', "12", '"\\ud800"']),
}


def record(**raw: str) -> str:
    """One export line; ``raw`` fields are JSON text put in as they are."""
    fields = {"uuid": json.dumps(str(uuid.uuid4())), "aggregate_id": json.dumps(str(uuid.uuid4())),
              "type": '"fuzzed"', "body": "{}", "version": "1",
              "created_at": '"2026-01-01T00:00:00+00:00"'} | raw
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"


@st.composite
def hostile_files(draw: st.DrawFn) -> bytes:
    """A few good lines and one hostile one (a bad field, garbage, or bytes that are not
    UTF-8), somewhere among them."""
    kind = draw(st.sampled_from([*hostile_fields, "garbage", "not utf-8"]))
    if kind == "garbage":
        text = draw(st.text(st.characters(blacklist_categories=["Cs"],
                                          blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e"
                                                               "\x85\u2028\u2029"),
                            min_size=1, max_size=50))
        bad = text.encode()
    elif kind == "not utf-8":
        bad = record(body='{"k": "@"}').encode().replace(b"@", b"\xff\xfe")
    else:
        bad = record(**{kind: draw(hostile_fields[kind])}).encode()
    lines = [record().encode() for _ in range(draw(st.integers(1, 4)))]
    lines.insert(draw(st.integers(0, len(lines))), bad)
    return b"\n".join(lines) + b"\n"


@pytest.fixture(params=["sqlite", "postgres"])
def cli_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Cli, EventStore]]:
    backend = make_backend(request.param, tmp_path)
    store = backend.open()
    store.setup()
    try:
        yield Cli(backend.env()), store
    finally:
        backend.close_all()
        if backend.schema:
            drop_schema(backend.schema)


@FUZZ
@given(content=hostile_files())
def test_a_hostile_import_file_is_one_error_line_exit_2_and_writes_nothing(
        cli_store: tuple[Cli, EventStore], tmp_path: Path, content: bytes) -> None:
    cli, store = cli_store
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(content)
    before = snapshot(store)
    result = cli("import", str(path), "--yes", "--allow-unknown-type")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("esctl: error: line ")
    assert "Traceback" not in result.output
    assert snapshot(store) == before


# -- hostile identifiers in reads ----------------------------------------------------------------
hostile_names = st.one_of(st.tuples(st.text(max_size=5), SURROGATES).map("".join),
                          st.text(max_size=5).map(lambda s: s + "\x00"))
hostile_positions = st.one_of(st.integers(min_value=2**63, max_value=2**300),
                              st.integers(max_value=-(2**63) - 1, min_value=-(2**300)))
READS = {
    "count of a type": lambda store, name, pos: store.count(types=[name]),
    "head of a type": lambda store, name, pos: store.latest_position(types=[name]),
    "page of a type": lambda store, name, pos: store.read_page(0, types=[name]),
    "existing uuids": lambda store, name, pos: store.existing_uuids([name]),
    "page after a position": lambda store, name, pos: store.read_page(pos),
    "count after a position": lambda store, name, pos: store.count(after=pos),
}


@pytest.mark.parametrize("store_spec", backend_params(), indirect=True)
@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
@settings(FUZZ, max_examples=10)
@given(name=hostile_names, position=hostile_positions)
def test_a_read_with_a_hostile_name_or_position_raises_only_library_errors(
        store: EventStore, read: Any, name: str, position: int) -> None:
    with contextlib.suppress(EsctlError):  # anything else fails the test
        read(store, name, position)
