"""A reactor that looks something up, sends, then writes (the todo notifier's shape):
the second event's lookup finds the first event's writes recorded, and commits them as a
prefix of the batch instead of opening the write transaction for the rest of the batch.
So no e-mail is ever sent while a write transaction is open."""

from __future__ import annotations

import logging
import threading
from collections import Counter

import pytest

from esctl_lib import Event, EventStore, ProcessingError, handles
from esctl_lib.processing import BatchTransaction, process_available
from tests.backends import StoreSpec
from tests.processing.handlers_outside_apps import Gate, HotAdded, HotNoticed, HotReactor, NoGate, ThreadGate
from tests.processing.handlers_outside_support import (
    add_hot,
    append_while_blocked,
    noticed,
    race_two_instances,
    rows,
    run_in_thread,
)


class LookUpSendWrite(HotReactor):
    """Per event: select, (block: the e-mail), write a row, emit."""

    name = "hot_look_up_send_write"

    def __init__(self, gate: Gate | None = None, block_on: int = -1, fail_on: int = -1
                 ) -> None:
        super().__init__(gate or NoGate(), block_on=block_on, fail_on=fail_on)
        self.calls: Counter[int] = Counter()
        self.inside: list[bool] = []

    @handles(HotAdded)
    def _added(self, event: Event, tx: BatchTransaction) -> None:
        n = int(event.body["n"])
        self.calls[n] += 1
        tx.select("hot_reactor_rows", where={"n": n - 1})
        self.inside.append(tx.in_write_transaction)
        if n == self.block_on:
            self.gate.block()
        if n == self.fail_on:
            raise RuntimeError(f"failing on {n}")
        tx.insert("hot_reactor_rows", {"n": n, "aggregate_id": event.aggregate_id})
        self.emit(HotNoticed(aggregate_id=event.aggregate_id, body={"n": n}))


def test_a_lookup_after_earlier_writes_stays_outside(store: EventStore) -> None:
    stored = add_hot(store, 6)
    reactor = LookUpSendWrite()
    assert process_available(reactor, store) == 6
    assert reactor.inside == [False] * 6
    assert rows(store, "hot_reactor_rows") == list(range(6))
    assert noticed(store) == Counter({e.uuid: 1 for e in stored})
    assert store.get_tracker(reactor.name) >= (stored[-1].id or 0)


def test_an_append_completes_while_a_later_event_blocks(store_spec: StoreSpec) -> None:
    store = store_spec.opened[0]
    stored = add_hot(store, 5)
    gate = ThreadGate()
    reactor = LookUpSendWrite(gate, block_on=3)
    thread, errors = run_in_thread(reactor, store)
    try:
        assert gate.reached.wait(30)
        append_while_blocked(store_spec, gate)
        # The events before the blocked one are committed already.
        assert store.get_tracker(reactor.name) == stored[2].id
    finally:
        gate.release.set()
        thread.join(60)
    assert not thread.is_alive() and errors == []
    assert rows(store, "hot_reactor_rows") == list(range(5))
    assert noticed(store) == Counter({e.uuid: 1 for e in stored})


def test_a_failure_after_a_prefix_commit_reruns_no_committed_event(store: EventStore) -> None:
    stored = add_hot(store, 6)
    reactor = LookUpSendWrite(fail_on=4)
    with pytest.raises(ProcessingError) as raised:
        process_available(reactor, store)
    assert raised.value.event_id == stored[4].id
    assert rows(store, "hot_reactor_rows") == [0, 1, 2, 3]
    assert store.get_tracker(reactor.name) == stored[3].id
    assert noticed(store) == Counter({e.uuid: 1 for e in stored[:4]})
    # 0..3 were committed by prefix commits as the batch went: none of them ran twice.
    assert reactor.calls == Counter({0: 1, 1: 1, 2: 1, 3: 1, 4: 1})


def test_two_racing_instances_with_prefix_commits_store_everything_once(
    store_spec: StoreSpec, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="esctl.processing")
    first = store_spec.opened[0]
    total = 40
    stored = add_hot(first, total)
    barrier = threading.Barrier(2, timeout=30)
    arrivals: list[int] = []
    lock = threading.Lock()

    class WithBarrier(LookUpSendWrite):
        """Both instances meet before event 1's lookup, event 0's writes recorded."""

        name = "hot_racing_prefix"

        @handles(HotAdded)
        def _added(self, event: Event, tx: BatchTransaction) -> None:
            if int(event.body["n"]) == 1:
                with lock:
                    arrivals.append(1)
                    meeting = len(arrivals) <= 2
                if meeting:
                    barrier.wait()
            super()._added(event, tx)

    errors = race_two_instances(WithBarrier, first, store_spec.open())
    assert errors == []
    assert len(arrivals) >= 2
    # The loser's prefix commit found the tracker moved and carried on from it.
    assert any("carrying on from the tracker" in r.getMessage() for r in caplog.records)
    # ... failing at its tracker move, before writing a row: never as a failed event.
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    with first.read_transaction() as tx:
        found = [int(r[0]) for r in tx.fetchall("SELECT n FROM hot_reactor_rows ORDER BY n")]
    assert found == list(range(total))
    assert noticed(first) == Counter({e.uuid: 1 for e in stored})
