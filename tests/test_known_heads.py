"""KnownHeads: the versions a PostgreSQL store object saw as an aggregate's newest."""

from __future__ import annotations

from esctl_lib.events import Event
from esctl_lib.serialization import BodyEncoder
from esctl_lib.stores.postgres.append import (
    KNOWN_MANY,
    KNOWN_ONE,
    LOCKED_MANY,
    LOCKED_ONE,
    NOTIFYING_KNOWN_MANY,
    NOTIFYING_KNOWN_ONE,
    Batch,
)
from esctl_lib.stores.postgres.known_heads import KnownHeads

AGG = "0b6e2a4c-4e0c-4a8f-9d3e-7d1b2c3a4f50"


class HeadEvent(Event, type_name="head_event"):
    pass


def test_only_the_noted_version_is_known() -> None:
    heads = KnownHeads()
    heads.note(AGG, 3)
    assert heads.at(AGG, 3)
    assert not heads.at(AGG, 2)
    assert not heads.at(AGG, 4)
    assert not heads.at("another", 3)


def test_version_zero_is_never_known() -> None:
    """A first event always reads the version: the key alone would draw an id on refusal."""
    heads = KnownHeads()
    heads.note(AGG, 0)
    assert not heads.at(AGG, 0)


def test_a_forgotten_head_is_not_known() -> None:
    heads = KnownHeads()
    heads.note(AGG, 3)
    heads.forget(AGG)
    heads.forget(AGG)  # forgetting twice is harmless
    assert not heads.at(AGG, 3)


def test_the_map_is_bounded_and_drops_the_oldest_note_first() -> None:
    heads = KnownHeads(limit=3)
    for i in range(3):
        heads.note(f"a{i}", 1)
    heads.note("a0", 2)  # noted again: now the newest
    heads.note("a3", 1)
    assert len(heads) == 3
    assert not heads.at("a1", 1)
    assert heads.at("a0", 2) and heads.at("a2", 1) and heads.at("a3", 1)


def _placeholders(query: str) -> int:
    return query.count("%s")


def test_known_statements_skip_the_version_read_and_fit_their_parameters() -> None:
    encoder = BodyEncoder()
    one = Batch([HeadEvent(aggregate_id=AGG, body={"n": 1})], encoder)
    many = Batch([HeadEvent(aggregate_id=AGG, body={"n": i}) for i in range(3)], encoder)
    for batch, known, locked, notifying in ((one, KNOWN_ONE, LOCKED_ONE, NOTIFYING_KNOWN_ONE),
                                            (many, KNOWN_MANY, LOCKED_MANY,
                                             NOTIFYING_KNOWN_MANY)):
        query, params = batch.statement(4, 77, None, known=True)
        assert query == known and "max(version)" not in query
        assert _placeholders(query) == len(params) and params[0] == 77
        query, params = batch.statement(4, 77, "chan", known=True)
        assert query == notifying and params[-1] == "chan"
        assert _placeholders(query) == len(params)
        query, params = batch.statement(4, 77, None, known=False)
        assert query == locked and "max(version)" in query
        assert _placeholders(query) == len(params)
    # inside a transaction (no lock parameter) the version is always read
    query, _ = one.statement(4, known=True)
    assert "max(version)" in query
