"""Online rebuilds (issue 11, item 1): shadow tables, an atomic swap, the live projection
untouched by a failure, and a runner that keeps processing meanwhile."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from esctl_lib import (
    Event,
    EventStore,
    ProcessingError,
    RebuildState,
    handles,
    process_available,
    rebuild_state,
)
from esctl_lib.processing import BatchTransaction, Projector, open_tables
from esctl_lib.processing.rebuild import rebuild
from esctl_lib.processing.state import read_state
from esctl_lib.testing import eventually
from tests.backends import StoreSpec
from tests.processing.events import ProcItemAdded, ProcItemRemoved
from tests.processing.helpers import new_id, wait_readable
from tests.processing.runner_apps.apps import RunnerTick, TickCounter
from tests.processing.runner_apps.support import python, start_runner, stop

AGGREGATES = [new_id() for _ in range(5)]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "todo"


class Tally(Projector):
    """Counts items per aggregate (raw SQL through the queue, helpers, an index); fails
    on the event ids in ``fail_on``; ``weight`` is what each item counts for."""

    name = "rb_tally"
    batch_size = 10
    tables = {
        "rb_tally": [
            "CREATE TABLE IF NOT EXISTS rb_tally (aggregate_id TEXT PRIMARY KEY, "
            "n INTEGER NOT NULL)",
            "CREATE INDEX IF NOT EXISTS rb_tally_n ON rb_tally (n)",
        ],
    }

    def __init__(self, *, fail_on: tuple[int, ...] = (), weight: int = 1) -> None:
        self.fail_on = fail_on
        self.weight = weight

    @handles(ProcItemAdded)
    def _added(self, event: Event, tx: BatchTransaction) -> None:
        if event.id in self.fail_on:
            raise ValueError(f"cannot tally event {event.id}")
        p = tx.placeholder
        tx.defer(
            f"INSERT INTO rb_tally (aggregate_id, n) VALUES ({p}, {p}) "
            f"ON CONFLICT (aggregate_id) DO UPDATE SET n = rb_tally.n + {p}",
            (event.aggregate_id, self.weight, self.weight),
        )

    @handles(ProcItemRemoved)
    def _removed(self, event: Event, tx: BatchTransaction) -> None:
        tx.delete("rb_tally", where={"aggregate_id": event.aggregate_id})


def tally(store: EventStore) -> dict[str, int]:
    with open_tables(store) as tx:
        return {r["aggregate_id"]: int(r["n"]) for r in tx.select("rb_tally")}


def fill(store: EventStore, per_aggregate: int = 10) -> None:
    """``per_aggregate`` items for each of AGGREGATES (50 events by default), live."""
    for i in range(per_aggregate):
        for agg in AGGREGATES:
            store.append([ProcItemAdded(aggregate_id=agg, body={"i": i})])
    wait_readable(store, store.latest_position())
    process_available(Tally(), store)


def table_names(spec: StoreSpec, store: EventStore) -> list[str]:
    """Every table and index whose name mentions rb_tally, anywhere in the store's
    database (PostgreSQL: in every schema named after the test's), sorted."""
    with store.transaction() as tx:
        if spec.backend == "postgres":
            rows = tx.fetchall(
                "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname LIKE %s AND c.relname LIKE %s",
                (f"{spec.schema}%", "rb_tally%"))
        else:
            rows = tx.fetchall("SELECT type || '.' || name FROM sqlite_master "
                               "WHERE name LIKE '%rb_tally%'")
    return sorted(str(r[0]) for r in rows)


pytestmark = pytest.mark.usefixtures("shared_store_spec")


@pytest.fixture
def spec(shared_store_spec: StoreSpec) -> StoreSpec:
    return shared_store_spec


@pytest.fixture
def live(spec: StoreSpec) -> EventStore:
    """A store whose rb_tally projection is live and at the head."""
    store = spec.opened[0]
    fill(store)
    return store


# -- readers ---------------------------------------------------------------------------
def test_a_reader_on_another_connection_sees_the_full_live_table_throughout(
    spec: StoreSpec, live: EventStore
) -> None:
    reader = spec.open()
    full = tally(reader)
    assert full == {agg: 10 for agg in AGGREGATES}
    seen: list[dict[str, int]] = []
    steps: list[tuple[int, int]] = []

    def look(done: int, total: int) -> None:
        steps.append((done, total))
        seen.append(tally(reader))

    rebuild(Tally(), live, progress=look)
    assert len(seen) >= 5  # before the first batch and after each of them
    assert all(view == full for view in seen)
    assert tally(reader) == full
    assert (steps[0], steps[-1]) == ((0, 50), (50, 50))


# -- the swap --------------------------------------------------------------------------
def test_a_reader_sees_the_old_fold_until_the_swap_and_the_new_one_after(
    spec: StoreSpec, live: EventStore
) -> None:
    removed = AGGREGATES[0]
    live.append([ProcItemRemoved(aggregate_id=removed)])
    wait_readable(live, live.latest_position())
    reader = spec.open()
    old = tally(reader)
    new = {agg: 20 for agg in AGGREGATES if agg != removed}
    seen: list[dict[str, int]] = []
    result = rebuild(Tally(weight=2), live, progress=lambda d, t: seen.append(tally(reader)))
    assert seen[0] == old and seen[-1] == new
    assert all(view in (old, new) for view in seen)
    assert live.get_tracker("rb_tally") == live.latest_position() == result.position
    assert (result.events, result.handled) == (51, 51)


def test_the_old_and_the_shadow_tables_are_dropped_after_the_swap(
    spec: StoreSpec, live: EventStore
) -> None:
    before = table_names(spec, live)
    during: list[list[str]] = []
    rebuild(Tally(), live, progress=lambda d, t: during.append(table_names(spec, spec.open())))
    assert all(len(names) == 2 * len(before) for names in during[:-1])  # shadows beside
    assert table_names(spec, live) == before  # the table and its index, once each


def test_an_error_inside_the_swap_transaction_leaves_the_live_state(
    spec: StoreSpec, live: EventStore
) -> None:
    before, tables = tally(live), table_names(spec, live)
    live.append([ProcItemAdded(aggregate_id=AGGREGATES[0])])
    tracker = live.get_tracker("rb_tally")

    def fail() -> None:
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        rebuild(Tally(weight=3), live, on_swap=fail)
    assert tally(live) == before
    assert live.get_tracker("rb_tally") == tracker
    assert table_names(spec, live) == tables


def _rebuild_and_die_before_the_swap_commits(url: str, schema: str | None) -> None:
    """In a child process: rebuild rb_tally, and SIGKILL itself inside the swap."""
    import os

    from esctl_lib import open_store

    store = open_store(url, schema=schema)
    rebuild(Tally(weight=3), store, on_swap=lambda: os.kill(os.getpid(), signal.SIGKILL))


def test_a_kill_just_before_the_swap_commits_leaves_the_live_state(
    spec: StoreSpec, live: EventStore
) -> None:
    live.append([ProcItemAdded(aggregate_id=AGGREGATES[0])])  # the live tracker lags
    wait_readable(live, live.latest_position())
    before, tracker = tally(live), live.get_tracker("rb_tally")
    assert tracker < live.latest_position()
    child = python("-c", "import sys; from tests.processing.test_online_rebuild import "
                   "_rebuild_and_die_before_the_swap_commits as f; f(sys.argv[1], "
                   "sys.argv[2] if sys.argv[2] != '-' else None)",
                   spec.url, spec.schema or "-")
    _, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, err
    assert tally(live) == before
    assert live.get_tracker("rb_tally") == tracker
    state = rebuild_state(live, "rb_tally")
    assert state is not None and state.state == "interrupted"
    rebuild(Tally(), live)  # the next rebuild clears what the dead one left
    assert tally(live) == {agg: 11 if agg == AGGREGATES[0] else 10 for agg in AGGREGATES}


# -- failures --------------------------------------------------------------------------
def test_a_handler_failing_midway_leaves_the_live_rows_and_tracker(
    spec: StoreSpec, live: EventStore
) -> None:
    before, tracker, tables = tally(live), live.get_tracker("rb_tally"), table_names(spec, live)
    with pytest.raises(ProcessingError, match="cannot tally event 25"):
        rebuild(Tally(fail_on=(25,), weight=5), live)
    assert tally(live) == before
    assert live.get_tracker("rb_tally") == tracker
    assert table_names(spec, live) == tables  # the shadow tables went


def test_a_failed_rebuild_is_recorded_with_its_error(live: EventStore) -> None:
    with pytest.raises(ProcessingError):
        rebuild(Tally(fail_on=(25,)), live)
    state = rebuild_state(live, "rb_tally")
    assert isinstance(state, RebuildState)
    assert state.state == "failed"
    assert state.error is not None and "cannot tally event 25" in state.error
    assert state.finished_at is not None and state.position == 20


def test_a_ctrl_c_midway_leaves_the_live_state_and_is_recorded_as_interrupted(
    spec: StoreSpec, live: EventStore
) -> None:
    before, tracker, tables = tally(live), live.get_tracker("rb_tally"), table_names(spec, live)

    def interrupt(done: int, total: int) -> None:
        if done == 30:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rebuild(Tally(weight=7), live, progress=interrupt)
    assert (tally(live), live.get_tracker("rb_tally")) == (before, tracker)
    assert table_names(spec, live) == tables
    state = rebuild_state(live, "rb_tally")
    assert state is not None and (state.state, state.position) == ("interrupted", 30)


def test_a_succeeded_rebuild_is_recorded(live: EventStore) -> None:
    assert rebuild_state(live, "rb_tally") is None
    rebuild(Tally(), live)
    state = rebuild_state(live, "rb_tally")
    assert state is not None
    assert (state.state, state.error, state.position, state.events) == (
        "succeeded", None, live.latest_position(), 50)


def test_a_second_rebuild_of_the_same_processor_is_refused_meanwhile(
    spec: StoreSpec, live: EventStore
) -> None:
    from esctl_lib import ProcessorLockedError

    errors: list[BaseException] = []

    def second(done: int, total: int) -> None:
        if done == 10 and not errors:
            try:
                rebuild(Tally(), spec.open())
            except ProcessorLockedError as e:
                errors.append(e)

    rebuild(Tally(), live, progress=second)
    assert len(errors) == 1 and "already running" in str(errors[0])


# -- with a runner up --------------------------------------------------------------------
class SmallTicks(TickCounter):
    """The runner's tick counter, rebuilt in small batches (same name, same table)."""

    name = "tick_counter"
    batch_size = 25


def ticks(store: EventStore) -> dict[str, int]:
    with open_tables(store) as tx:
        return {r["aggregate_id"]: int(r["n"]) for r in tx.select("tick_counts")}


def append_ticks(store: EventStore, count: int, expected: dict[str, int]) -> None:
    for i in range(count):
        agg = AGGREGATES[i % len(AGGREGATES)]
        store.append([RunnerTick(aggregate_id=agg)])
        expected[agg] = expected.get(agg, 0) + 1


@pytest.mark.slow
def test_a_rebuild_while_a_runner_processes_new_events_ends_with_their_fold(
    spec: StoreSpec, tmp_path: Path
) -> None:
    store = spec.opened[0]
    expected: dict[str, int] = {}
    append_ticks(store, 200, expected)
    runner = start_runner(spec, tmp_path, "TickCounter")
    try:
        eventually(lambda: store.get_tracker("tick_counter") == store.latest_position(),
                   timeout=60, what="the runner to catch up")
        writer_store = spec.open()
        writing = threading.Thread(target=append_ticks, args=(writer_store, 150, expected))
        writing.start()
        views: list[dict[str, int]] = []
        rebuild(SmallTicks(), spec.open(),
                progress=lambda done, total: views.append(ticks(store)))
        writing.join()
        append_ticks(store, 5, expected)
        eventually(lambda: ticks(store) == expected, timeout=60,
                   what="the projection to hold every tick")
        assert store.get_tracker("tick_counter") == store.latest_position()
        assert all(sum(v.values()) >= 200 for v in views)  # never emptied meanwhile
        assert runner.poll() is None
        state = read_state(store, "tick_counter")
        assert state is not None and state.state != "failing"
    finally:
        assert stop(runner) == 0, (tmp_path / "runner.log").read_text()


# -- the todo example ------------------------------------------------------------------
def test_the_todo_example_projectors_rebuild_to_the_same_read_models(
    spec: StoreSpec,
) -> None:
    if str(EXAMPLE) not in sys.path:
        sys.path.insert(0, str(EXAMPLE))
    from todo_app import projections
    from todo_app.events import TodoAbandoned, TodoAdded, TodoAmended, TodoCompleted

    store = spec.opened[0]
    todos = [new_id() for _ in range(6)]
    for i, todo in enumerate(todos):
        store.append([TodoAdded(aggregate_id=todo, body={
            "title": f"todo {i}", "due_date": f"2026-01-0{i + 1}" if i % 2 else None})])
    store.append([TodoAmended(aggregate_id=todos[0], body={"due_date": "2026-02-01"})])
    store.append([TodoCompleted(aggregate_id=todos[1], body={"completed_on": "2026-03-01"})])
    store.append([TodoAbandoned(aggregate_id=todos[2], body={"abandoned_on": "2026-03-02"})])
    wait_readable(store, store.latest_position())
    projectors = [projections.OutstandingTodos(), projections.CompletedTodos(),
                  projections.ScheduledTodos()]
    for projector in projectors:
        process_available(projector, store)
    before = (projections.outstanding_todos(store), projections.completed_todos(store),
              projections.scheduled_todos(store))
    assert before[0] and before[1] and before[2]
    reader = spec.open()
    seen: list[Any] = []
    for projector in projectors:
        rebuild(type(projector)(), store, progress=lambda d, t: seen.append((
            projections.outstanding_todos(reader), projections.completed_todos(reader),
            projections.scheduled_todos(reader))))
    assert seen and all(view == before for view in seen)
    after = (projections.outstanding_todos(store), projections.completed_todos(store),
             projections.scheduled_todos(store))
    assert after == before


@pytest.mark.parametrize("shared_store_spec", ["postgres"], indirect=True)
def test_the_swap_waits_for_a_reader_holding_the_live_table_and_then_goes_through(
    spec: StoreSpec, live: EventStore
) -> None:
    import psycopg

    from tests.backends import POSTGRES_DSN

    reader = psycopg.connect(POSTGRES_DSN)
    reader.execute(f'SELECT count(*) FROM "{spec.schema}".rb_tally')  # holds its lock
    at_head: list[int] = []

    def release_once_tried(done: int, total: int) -> None:
        if done == total == 50:
            at_head.append(done)
            if len(at_head) == 1:
                reader.rollback()  # the swap could not have the lock: let it have it now

    results: list[Any] = []
    rebuilding = threading.Thread(target=lambda: results.append(
        rebuild(Tally(weight=4), spec.open(), progress=release_once_tried)))
    rebuilding.start()
    try:
        rebuilding.join(timeout=60)  # a deadline: the rebuild must not wait on the reader
        assert not rebuilding.is_alive(), "the rebuild blocked on the reader's lock"
    finally:
        reader.close()
        rebuilding.join()
    assert len(at_head) >= 2  # a swap that gave up, then one that went through
    assert results[0].position == live.get_tracker("rb_tally") == live.latest_position()
    assert tally(live) == {agg: 40 for agg in AGGREGATES}
