"""A bad event holds back nothing before it: the events before it commit, the retry policy
applies to it alone, parking commits at once, and the recorded state names it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from esctl_lib import Event, EventStore, ProcessingError, Transaction, handles
from esctl_lib.processing import (
    ConstantRetry,
    NoRetry,
    Projector,
    list_parked,
    run_processor,
)
from tests.backends import StoreSpec
from tests.processing.events import ProcItemAdded
from tests.processing.helpers import ItemCounts, add_items, counts, new_id, readable


class Poisoned(ItemCounts):
    """Fails on every event whose id is in ``poison``."""

    name = "proc_poisoned"

    def __init__(self, *poison: int) -> None:
        self.poison = set(poison)
        super().__init__(fail_when=lambda event: event.id in self.poison)


def test_the_events_before_a_failing_one_commit_with_their_tracker(store: EventStore) -> None:
    agg = new_id()
    add_items(store, 3, aggregate=agg)
    with pytest.raises(ProcessingError):
        run_processor(Poisoned(2), store, stop=threading.Event(), once=True, retry=NoRetry())
    assert (counts(store), store.get_tracker("proc_poisoned")) == ({agg: 1}, 1)


class UniqueNames(Projector):
    """Inserts one row per aggregate: a second event of an aggregate violates the key when
    its queued insert is sent, not when its handler runs."""

    name = "proc_unique_names"
    tables = {"proc_unique_names": "CREATE TABLE IF NOT EXISTS proc_unique_names "
                                   "(aggregate_id TEXT PRIMARY KEY)"}

    @handles(ProcItemAdded)
    def _added(self, event: Event, tx: Transaction) -> None:
        tx.insert("proc_unique_names", {"aggregate_id": event.aggregate_id})


def test_a_queued_write_failing_later_is_pinned_on_its_event_and_those_before_commit(
    store: EventStore,
) -> None:
    a, b = new_id(), new_id()
    readable(store, store.append([ProcItemAdded(aggregate_id=a, body={})]))
    readable(store, store.append([ProcItemAdded(aggregate_id=a, body={})]))
    readable(store, store.append([ProcItemAdded(aggregate_id=b, body={})]))
    with pytest.raises(ProcessingError) as caught:
        run_processor(UniqueNames(), store, stop=threading.Event(), once=True, retry=NoRetry())
    with store.transaction() as tx:
        rows = [str(r[0]) for r in tx.fetchall("SELECT aggregate_id FROM proc_unique_names")]
    assert (caught.value.event_id, rows, store.get_tracker("proc_unique_names")) == (2, [a], 1)


def test_the_retry_policy_applies_to_the_failing_event_alone(store: EventStore) -> None:
    add_items(store, 3)
    processor = Poisoned(2)
    slept: list[float] = []
    run_processor(processor, store, stop=threading.Event(), once=True,
                  retry=ConstantRetry(max_attempts=2, sleep=slept.append))
    # batch 1-3 fails on 2; 1 commits alone; the retry reads from 2; 2 parks; 3 goes on
    assert (processor.seen, slept) == ([1, 2, 1, 2, 3], [1.0])


def test_the_recorded_state_names_the_failing_event_its_type_aggregate_and_error(
    store: EventStore,
) -> None:
    agg = new_id()
    add_items(store, 2, aggregate=agg)
    states: list[tuple[str, int, str | None]] = []
    with pytest.raises(ProcessingError):
        run_processor(Poisoned(2), store, stop=threading.Event(), once=True, retry=NoRetry(),
                      on_state=lambda *s: states.append(s))
    [(position, error)] = [(p, e) for s, p, e in states if s == "failing"]
    assert position == 1
    assert error is not None
    for part in ("event 2", "proc_item_added", f"aggregate {agg}", "cannot count event 2"):
        assert part in error


def parked_ids_seen_elsewhere(spec: StoreSpec) -> list[int]:
    """The parked event ids as another connection sees them now, through the driver (a
    store transaction would wait for the worker's write lock on SQLite)."""
    if spec.backend == "sqlite":
        import sqlite3

        conn = sqlite3.connect(spec.url.removeprefix("sqlite:///"))
        try:
            return [int(r[0]) for r in conn.execute("SELECT event_id FROM parked_events")]
        finally:
            conn.close()
    import psycopg
    from psycopg import sql

    with psycopg.connect(spec.url, autocommit=True) as pg:
        rows = pg.execute(sql.SQL("SELECT event_id FROM {}.parked_events").format(
            sql.Identifier(spec.schema or "public"))).fetchall()
    return [int(r[0]) for r in rows]


def test_parking_is_committed_before_the_next_event_is_handled(
    shared_store_spec: StoreSpec,
) -> None:
    store = shared_store_spec.opened[0]
    add_items(store, 2)
    seen_parked: list[list[int]] = []

    class Watching(Poisoned):
        def _added(self, event: Event, tx: Transaction) -> None:  # type: ignore[override]
            if event.id == 2:
                seen_parked.append(parked_ids_seen_elsewhere(shared_store_spec))
            super()._added(event, tx)

    run_processor(Watching(1), store, stop=threading.Event(), once=True,
                  retry=NoRetry(max_attempts=1))
    assert seen_parked and seen_parked[0] == [1]


def test_none_with_max_attempts_parks_at_the_first_failure_and_goes_on(
    store: EventStore,
) -> None:
    agg = new_id()
    add_items(store, 3, aggregate=agg)
    run_processor(Poisoned(2), store, stop=threading.Event(), once=True,
                  retry=NoRetry(max_attempts=3))
    parked = [(p.event_id, p.attempts) for p in list_parked(store)]
    assert (parked, counts(store), store.get_tracker("proc_poisoned")) == (
        [(2, 1)], {agg: 2}, 3)


def test_run_processor_returns_how_many_events_it_parked(store: EventStore) -> None:
    add_items(store, 4)
    parked = run_processor(Poisoned(1, 3), store, stop=threading.Event(), once=True,
                           retry=NoRetry(max_attempts=1))
    assert parked == 2


@pytest.mark.slow
@pytest.mark.parametrize("store_spec", ["sqlite", "postgres"], indirect=True)
def test_under_the_runner_none_stops_that_processor_for_good_and_the_others_go_on(
    store_spec: StoreSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.processing.runner_apps.apps import RunnerTick
    from tests.processing.runner_apps.support import start_runner, stop, wait_until

    monkeypatch.setenv("ESCTL_RUNNER_TEST_DIR", str(tmp_path))
    store = store_spec.opened[0]
    agg = new_id()
    readable(store, store.append([RunnerTick(aggregate_id=agg, body={"poison": True})]))
    runner = start_runner(store_spec, tmp_path, "PoisonStopper", "TickCounter", retry="none")
    log = tmp_path / "runner.log"
    try:
        wait_until(lambda: "left stopped" in log.read_text()
                   or "restarting in" in log.read_text(), proc=runner,
                   what="the runner to deal with the failed child")
        readable(store, store.append([RunnerTick(aggregate_id=agg)]))
        wait_until(lambda: store.get_tracker("tick_counter") == 2, proc=runner,
                   what="the other processor to go on")
    finally:
        code = stop(runner)
    text = log.read_text()
    assert "restarting in" not in text and "poison_stopper failed on an event" in text
    assert code == 1
