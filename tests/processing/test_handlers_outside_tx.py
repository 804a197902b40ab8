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
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from esctl_lib import EventStore, ProcessingError, handles
from esctl_lib.events import Event
from esctl_lib.processing import (
    BatchTransaction,
    ConstantRetry,
    NoRetry,
    Projector,
    is_readable,
    process_available,
    run_processor,
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
from tests.processing.runner_apps.support import python, shared_backends


def add_hot(store: EventStore, count: int) -> list[Event]:
    stored = []
    for n in range(count):
        stored += store.append([HotAdded(aggregate_id=str(uuid.uuid4()), body={"n": n})])
    eventually(lambda: is_readable(store, stored[-1].id or 0), timeout=30,
               what="the events to be readable")
    return stored


def rows(store: EventStore, table: str) -> list[int]:
    with store.read_transaction() as tx:
        return sorted(int(r[0]) for r in tx.fetchall(f"SELECT n FROM {table}"))


def noticed(store: EventStore) -> Counter[str]:
    """How often each triggering event's HotNoticed is stored (by causation id)."""
    return Counter(e.causation_id for e in store.iter_range(0)
                   if isinstance(e, HotNoticed) and e.causation_id)


def run_in_thread(processor: Processor, store: EventStore) -> tuple[threading.Thread,
                                                                     list[BaseException]]:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run_processor(processor, store, stop=threading.Event(), once=True, retry=NoRetry())
        except BaseException as e:  # pragma: no cover - reported by the test
            errors.append(e)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, errors


def append_while_blocked(spec: StoreSpec, gate: ThreadGate) -> None:
    """An application append from another connection and thread completes, and becomes
    readable, while the handler is still blocked on ``gate``."""
    other = spec.open()
    done = threading.Event()
    appended: list[Event] = []

    def append() -> None:
        appended.extend(other.append([HotNoticed(aggregate_id=str(uuid.uuid4()))]))
        done.set()

    threading.Thread(target=append, daemon=True).start()
    assert done.wait(20), "the append waited for the blocked handler"
    assert not gate.release.is_set()
    reader = spec.opened[0]  # the processor's handle: not the appender's own view
    eventually(lambda: is_readable(reader, appended[0].id or 0), timeout=20,
               what="the application's event to be readable while the handler blocks")
    assert not gate.release.is_set()


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

    errors: list[BaseException] = []

    def instance(store: EventStore) -> None:
        try:
            run_processor(HotReactor(barrier=meet), store, stop=threading.Event(), once=True,
                          retry=ConstantRetry(interval=0.0, sleep=lambda s: None))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    HotReactor().setup(first)  # its tables (two setups at once may race on PostgreSQL)
    threads = [threading.Thread(target=instance, args=(s,), daemon=True)
               for s in (first, store_spec.open())]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive()
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
