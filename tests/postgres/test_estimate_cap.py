"""PostgreSQL counts a type's events without a type index (schema 3): the scan of the
stream stops after ``scan_cap`` entries, so a rare type far behind is estimated in bounded
time instead of scanning the whole stream after the position."""

from __future__ import annotations

import uuid

import pytest

from esctl_lib import Event
from esctl_lib.stores.postgres import estimates
from esctl_lib.testing import eventually
from tests.postgres.conftest import PgSpec


class CapCommon(Event, type_name="cap_common"):
    pass


class CapRare(Event, type_name="cap_rare"):
    pass


def fill(pg: PgSpec) -> int:
    """330 events: every 11th is rare (30 of them), spread evenly over the stream."""
    store = pg.open()
    for _ in range(3):
        aggregate = str(uuid.uuid4())
        events: list[Event] = []
        for i in range(110):
            events.append(CapRare(aggregate_id=aggregate) if i % 11 == 10
                          else CapCommon(aggregate_id=aggregate))
        store.append(events)
    eventually(lambda: store.count() == 330, what="all 330 events readable")
    return store.latest_position()


def test_a_rare_type_is_counted_exactly_when_the_scan_reaches_the_end(pg: PgSpec) -> None:
    fill(pg)
    found = pg.open().estimate_count(types=["cap_rare"], exact_up_to=20)
    assert (found.count, found.exact) == (30, False)  # 30 > 20: beyond the bound
    found = pg.open().estimate_count(types=["cap_rare"], exact_up_to=30)
    assert (found.count, found.exact) == (30, True)


def test_a_capped_scan_estimates_the_rare_type_from_its_density(
        pg: PgSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(pg)
    monkeypatch.setattr(estimates, "scan_cap", lambda exact_up_to: 110)
    found = pg.open().estimate_count(types=["cap_rare"], exact_up_to=30)
    # 10 rare among the first 110 entries, over 330: about 30, and marked an estimate.
    assert not found.exact
    assert 27 <= found.count <= 33
    # A type that fills the bound within the cap is estimated as before; both together.
    both = pg.open().estimate_count(types=["cap_rare", "cap_common"], exact_up_to=30)
    assert not both.exact and 300 <= both.count <= 360


def test_the_cap_never_applies_to_a_stream_shorter_than_it(
        pg: PgSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(pg)
    monkeypatch.setattr(estimates, "scan_cap", lambda exact_up_to: 330)
    found = pg.open().estimate_count(types=["cap_rare"], exact_up_to=30)
    assert (found.count, found.exact) == (30, True)
