"""kill -9 a runner's child in the middle of a long catch-up: nothing lost, nothing doubled."""

from __future__ import annotations

import os
import signal
import uuid
from collections import Counter
from pathlib import Path

import pytest

from esctl_lib import EventStore
from esctl_lib.processing.state import read_state
from tests.backends import StoreSpec
from tests.processing.runner_apps.apps import RunnerTick
from tests.processing.runner_apps.support import shared_backends, start_runner, stop, wait_until

pytestmark = [shared_backends, pytest.mark.slow]
EVENTS = 50_000
AGGREGATES = 250


def append_ticks(store: EventStore) -> None:
    ids = [str(uuid.uuid4()) for _ in range(AGGREGATES)]
    for _ in range(EVENTS // AGGREGATES // 100):
        for agg in ids:
            store.append([RunnerTick(aggregate_id=agg) for _ in range(100)])


def counts(store: EventStore) -> dict[str, int]:
    with store.transaction() as tx:
        return {agg: int(n) for agg, n in tx.fetchall("SELECT aggregate_id, n FROM tick_counts")}


def test_a_child_killed_mid_catch_up_resumes_without_loss_or_doubles(
    store_spec: StoreSpec, tmp_path: Path
) -> None:
    store = store_spec.opened[0]
    append_ticks(store)
    runner = start_runner(store_spec, tmp_path, "TickCounter")
    try:
        wait_until(lambda: store.get_tracker("tick_counter") >= 5_000, timeout=60,
                   what="the catch-up to be under way", proc=runner)
        state = read_state(store, "tick_counter")
        assert state is not None and state.pid is not None
        os.kill(state.pid, signal.SIGKILL)
        killed_at = store.get_tracker("tick_counter")
        wait_until(lambda: store.get_tracker("tick_counter") == EVENTS, timeout=120,
                   what="the restarted child to reach the head", proc=runner)
    finally:
        stop(runner)
    assert killed_at < EVENTS  # the kill did land mid-way
    expected = Counter(e.aggregate_id for e in store.iter_range(0))
    assert counts(store) == dict(expected)
