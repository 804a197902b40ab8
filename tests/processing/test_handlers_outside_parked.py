"""A parked event handled again (``esctl retry``, or a worker's queued retries) runs its
handler outside any write transaction too: an application append completes while it is
blocked, and the handler's row, its emitted event and the parked row's deletion commit
together."""

from __future__ import annotations

import itertools
import threading

from esctl_lib.processing import ConstantRetry, run_processor
from esctl_lib.processing.parking import list_parked, process_parked, retry_parked
from tests.backends import StoreSpec
from tests.processing.handlers_outside_apps import HotReactor, ThreadGate
from tests.processing.handlers_outside_support import (
    add_hot,
    append_while_blocked,
    noticed,
    rows,
)


def test_a_retried_parked_event_blocks_no_writer_and_commits_once(
    store_spec: StoreSpec,
) -> None:
    store = store_spec.opened[0]
    add_hot(store, 4)
    clock = itertools.count(100)
    run_processor(HotReactor(fail_on=2), store, stop=threading.Event(), once=True,
                  retry=ConstantRetry(max_attempts=2, sleep=lambda _s: None,
                                      clock=lambda: float(next(clock))))
    assert [p.event_id for p in list_parked(store, "hot_reactor")] == [3]  # n = 2
    assert rows(store, "hot_reactor_rows") == [0, 1, 3]
    assert retry_parked(store, "hot_reactor") == 1

    gate = ThreadGate()
    results: list[object] = []
    worker = threading.Thread(
        target=lambda: results.append(process_parked(HotReactor(gate, block_on=2), store)),
        daemon=True)
    worker.start()
    try:
        assert gate.reached.wait(30)
        append_while_blocked(store_spec, gate)
    finally:
        gate.release.set()
        worker.join(60)
    assert not worker.is_alive()
    [retried] = results
    assert (retried.succeeded, retried.failed) == (1, 0)  # type: ignore[attr-defined]
    assert rows(store, "hot_reactor_rows") == [0, 1, 2, 3]
    assert list_parked(store, "hot_reactor") == []
    assert sorted(noticed(store).values()) == [1] * 4
