"""``EventStore.estimate_count``: exact up to the bound, an estimate beyond it (marked), on
every backend; and what ``esctl status`` shows of it."""

from __future__ import annotations

import uuid

import pytest

from esctl_lib import Event, EventStore, handles, open_store
from esctl_lib.operations.status import status_report
from esctl_lib.processing import Projector
from esctl_lib.testing import eventually
from tests.backends import BACKENDS, backend_params, fresh_location


class EcCommon(Event, type_name="ec_common"):
    pass


class EcRare(Event, type_name="ec_rare"):
    pass


class Rare(Projector):
    name = "ec_rare_watcher"

    @handles(EcRare)
    def _on(self, event: Event, tx: object) -> None:
        pass


@pytest.fixture(params=backend_params(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: object) -> object:
    with fresh_location(request.param, tmp_path) as location:  # type: ignore[arg-type]
        opened = location.open()
        opened.setup()
        yield opened
        opened.close()


def fill(store: EventStore, common: int, rare_every: int) -> None:
    """``common`` events, every ``rare_every``-th of them followed by a rare one, all
    readable (on PostgreSQL another session's open transaction may hold them back a while).
    """
    for start in range(0, common, 50):
        aggregate = str(uuid.uuid4())
        events: list[Event] = []
        for i in range(start, min(common, start + 50)):
            events.append(EcCommon(aggregate_id=aggregate))
            if rare_every and (i + 1) % rare_every == 0:
                events.append(EcRare(aggregate_id=aggregate))
        store.append(events)
    total = common + (common // rare_every if rare_every else 0)
    eventually(lambda: store.count() == total and not _waiting(store), timeout=60,
               what=f"all {total} events readable")


def _waiting(store: EventStore) -> int:
    horizon = store.reader_horizon()
    return 0 if horizon is None else horizon.pending


def test_counts_are_exact_up_to_the_bound(store: EventStore) -> None:
    fill(store, 200, 10)
    assert store.count() == 220
    found = store.estimate_count(exact_up_to=220)
    assert (found.count, found.exact) == (220, True)
    rare = store.estimate_count(types=["ec_rare"], exact_up_to=20)
    assert (rare.count, rare.exact) == (20, True)
    assert store.estimate_count(after=store.latest_position()).count == 0


def test_beyond_the_bound_the_count_is_an_estimate_never_below_what_was_seen(
        store: EventStore) -> None:
    fill(store, 400, 10)
    found = store.estimate_count(exact_up_to=100)
    if store.backend == "memory":  # counts exactly, cheaply
        assert (found.count, found.exact) == (440, True)
        return
    assert not found.exact
    assert 101 <= found.count <= 2 * 440
    assert abs(found.count - 440) <= 0.25 * 440  # ids are dense here: close to the truth
    rare = store.estimate_count(types=["ec_rare", "ec_common"], exact_up_to=30)
    assert not rare.exact and abs(rare.count - 440) <= 0.25 * 440


def test_status_marks_an_estimated_lag_and_decides_max_lag_exactly(
        store: EventStore) -> None:
    fill(store, 10_200, 1)  # 10,200 rare events: more than status counts exactly
    report = status_report(store, [Rare()])
    [rare] = report.processors
    if store.backend == "memory":  # it counts exactly at any size, and says so
        assert (rare.lag_events, rare.lag_estimated, report.total_estimated) == (
            10_200, False, False)
        assert status_report(store, [Rare()], max_lag=10_199).problems == [
            "ec_rare_watcher: lag 10200 events exceeds 10199"]
        return
    assert rare.lag_estimated and report.total_estimated
    assert report.to_dict()["processors"][0]["lag_estimated"] is True
    assert report.to_dict()["store"]["total_events_estimated"] is True
    exact = status_report(store, [Rare()], max_lag=10_199)
    assert not exact.processors[0].lag_estimated  # counted up to max_lag + 1
    assert exact.processors[0].lag_events == 10_200
    assert exact.problems == ["ec_rare_watcher: lag 10200 events exceeds 10199"]
    assert status_report(store, [Rare()], max_lag=10_200).healthy


def test_a_small_lag_is_exact(store: EventStore) -> None:
    fill(store, 30, 3)
    [rare] = status_report(store, [Rare()]).processors
    assert (rare.lag_events, rare.lag_estimated) == (10, False)


def test_the_default_counts_exactly() -> None:
    assert open_store("memory://").estimate_count().exact


def test_max_lag_is_decided_exactly_for_a_rare_type_beyond_the_scan_cap(
        store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A type's count stops after ``scan_cap`` stream entries (no type index): with the
    rare events all after the cap, the estimate sees none of them. ``max_lag`` must still
    be decided on the true count, either way."""
    from esctl_lib.stores.postgres import estimates as pg_estimates
    from esctl_lib.stores.sqlite import estimates as sqlite_estimates

    for module in (pg_estimates, sqlite_estimates):
        monkeypatch.setattr(module, "scan_cap", lambda exact_up_to: 110)
    fill(store, 300, 0)
    late = str(uuid.uuid4())
    store.append([EcRare(aggregate_id=late) for _ in range(30)])
    eventually(lambda: store.count() == 330 and not _waiting(store), timeout=60,
               what="all 330 events readable")
    [guess] = status_report(store, [Rare()]).processors
    if store.backend != "memory":
        assert guess.lag_estimated and guess.lag_events < 30  # the capped scan saw none
    unhealthy = status_report(store, [Rare()], max_lag=29)
    assert (unhealthy.processors[0].lag_events, unhealthy.processors[0].lag_estimated) == (
        30, False)
    assert unhealthy.problems == ["ec_rare_watcher: lag 30 events exceeds 29"]
    healthy = status_report(store, [Rare()], max_lag=30)
    assert healthy.healthy and healthy.processors[0].lag_events == 30
