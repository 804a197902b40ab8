"""Handlers run outside any write transaction; their writes commit at the end of the batch.

A handler blocked on a gate the test controls (a threading.Event, no sleep) must not hold
up another writer: an application append completes, and is readable, while it is blocked.
The exactly-once guarantees stay: rows and tracker commit together, an emitted event is
stored once after a kill -9 mid-handler, and two racing instances are fenced.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from esctl_lib import EventStore, ProcessingError, handles
from esctl_lib.events import Event
from esctl_lib.processing import (
    BatchTransaction,
    Projector,
    process_available,
)
from esctl_lib.processing.processor import Processor
from esctl_lib.testing import eventually
from tests.backends import StoreSpec
from tests.processing.handlers_outside_apps import (
    TABLE_DDL,
    HotAdded,
    HotNoticed,
    HotProjector,
    HotReactor,
    ThreadGate,
)
from tests.processing.handlers_outside_support import (
    add_hot,
    append_while_blocked,
    noticed,
    race_two_instances,
    rows,
    run_in_thread,
)
from tests.processing.runner_apps.support import python, shared_backends


@pytest.mark.parametrize("kind", ["reactor", "projector"])
def test_an_append_completes_while_a_handler_blocks(store_spec: StoreSpec, kind: str) -> None:
    store = store_spec.opened[0]
    add_hot(store, 5)
    gate = ThreadGate()
    processor: Processor = (HotReactor(gate, block_on=2) if kind == "reactor"
                            else HotProjector(gate, block_on=2))
    thread, errors = run_in_thread(processor, store)
    try:
        assert gate.reached.wait(30)
        append_while_blocked(store_spec, gate)
    finally:
        gate.release.set()
        thread.join(60)
    assert not thread.is_alive() and errors == []
    table = "hot_reactor_rows" if kind == "reactor" else "hot_rows"
    assert rows(store, table) == [0, 1, 2, 3, 4]
    if kind == "reactor":
        assert sorted(noticed(store).values()) == [1] * 5


class ReadsItsWrites(Projector):
    """Writes a row, then reads it back (and the rows of the events before it)."""

    name = "hot_reads_its_writes"
    batch_size = 10
    tables = {"hot_rw_rows": TABLE_DDL.format("hot_rw_rows")}

    def __init__(self) -> None:
        self.seen: list[tuple[int, list[int], bool]] = []

    @handles(HotAdded)
    def _added(self, event: Event, tx: BatchTransaction) -> None:
        n = int(event.body["n"])
        before = tx.in_write_transaction
        if n % 2 == 0:
            tx.insert("hot_rw_rows", {"n": n, "aggregate_id": event.aggregate_id})
        found = sorted(int(r["n"]) for r in tx.select("hot_rw_rows"))
        self.seen.append((n, found, before))


def test_a_handler_reads_back_its_own_writes_in_the_batch(store: EventStore) -> None:
    add_hot(store, 5)
    projector = ReadsItsWrites()
    assert process_available(projector, store) == 5
    assert [(n, found) for n, found, _ in projector.seen] == [
        (0, [0]), (1, [0]), (2, [0, 2]), (3, [0, 2]), (4, [0, 2, 4])]
    # Outside any write transaction until the first read-back of a write (flush on read).
    assert projector.seen[0][2] is False
    assert [before for _, _, before in projector.seen[1:]] == [True] * 4
    assert rows(store, "hot_rw_rows") == [0, 2, 4]


def test_a_reactor_reads_before_writing_outside_any_write_transaction(
    store: EventStore,
) -> None:
    """Reads with nothing recorded yet run in a read transaction: no write is open."""
    add_hot(store, 3)
    states: list[bool] = []

    class LooksFirst(HotReactor):
        name = "hot_looks_first"

        @handles(HotAdded)
        def _added(self, event: Event, tx: BatchTransaction) -> None:
            tx.select("hot_reactor_rows", where={"n": -1})
            states.append(tx.in_write_transaction)
            self.emit(HotNoticed(aggregate_id=event.aggregate_id))

    assert process_available(LooksFirst(), store) == 3
    assert states == [False, False, False]
    assert sum(noticed(store).values()) == 3


@pytest.mark.parametrize("kind", ["reactor", "projector"])
def test_a_failure_mid_batch_commits_the_events_before_it(store: EventStore, kind: str) -> None:
    stored = add_hot(store, 6)
    processor: Processor = (HotReactor(fail_on=3) if kind == "reactor"
                            else HotProjector(fail_on=3))
    with pytest.raises(ProcessingError) as raised:
        process_available(processor, store)
    assert raised.value.event_id == stored[3].id
    table = "hot_reactor_rows" if kind == "reactor" else "hot_rows"
    assert rows(store, table) == [0, 1, 2]
    assert store.get_tracker(processor.name) == stored[2].id
    if kind == "reactor":
        assert noticed(store) == Counter({e.uuid: 1 for e in stored[:3]})


def test_two_racing_instances_store_each_row_and_event_once(
    store_spec: StoreSpec, caplog: pytest.LogCaptureFixture
) -> None:
    """Both instances handle the same first batch at once (a barrier inside the handler);
    the tracker's compare-and-set, first in the final transaction, lets only one commit
    it: the other fails there, before its rows could collide, and carries on."""
    caplog.set_level(logging.INFO, logger="esctl.processing")
    first = store_spec.opened[0]
    total = 40
    add_hot(first, total)
    barrier = threading.Barrier(2, timeout=30)
    arrivals: list[int] = []
    lock = threading.Lock()

    def meet(n: int) -> None:
        if n != 0:
            return
        with lock:
            arrivals.append(n)
            meeting = len(arrivals) <= 2
        if meeting:
            barrier.wait()

    errors = race_two_instances(lambda: HotReactor(barrier=meet), first, store_spec.open())
    assert errors == []
    assert len(arrivals) >= 2  # they did race on the first batch
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert any("carrying on from the tracker" in m for _, m in messages)
    assert [m for level, m in messages if level >= logging.WARNING] == []
    assert rows(first, "hot_reactor_rows") == list(range(total))
    counts = noticed(first)
    assert len(counts) == total and set(counts.values()) == {1}


@shared_backends
@pytest.mark.slow
def test_kill_9_while_a_handler_blocks_then_restart_emits_each_event_once(
    store_spec: StoreSpec, tmp_path: Path
) -> None:
    store = store_spec.opened[0]
    stored = add_hot(store, 25)  # three batches of 10: the kill lands in the second
    args: list[Any] = [store_spec.url, store_spec.schema or "-", str(tmp_path)]
    child = python("-m", "tests.processing.handlers_outside_child", *args, "15")
    try:
        eventually(lambda: (tmp_path / "reached").exists() or child.poll() is not None,
                   timeout=60, what="the child's handler to block")
        assert child.poll() is None, child.communicate()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    killed_at = store.get_tracker("hot_reactor")
    assert killed_at == stored[9].id  # the first batch committed, the second did not
    assert rows(store, "hot_reactor_rows") == list(range(10))
    (tmp_path / "open").touch()
    again = python("-m", "tests.processing.handlers_outside_child", *args, "15")
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert store.get_tracker("hot_reactor") >= (stored[-1].id or 0)
    assert rows(store, "hot_reactor_rows") == list(range(25))
    assert noticed(store) == Counter({e.uuid: 1 for e in stored})
