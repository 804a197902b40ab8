"""Fencing: each batch moves the tracker by compare-and-set, so two live instances of one
processor (a lock lost unnoticed, a misconfigured deployment) never apply an event twice."""

from __future__ import annotations

import threading

import pytest

from esctl_lib import EventStore, TrackerError, open_tables
from esctl_lib.processing import ConstantRetry, run_processor
from tests.backends import StoreSpec
from tests.processing.helpers import ItemCounts, add_items, counts, new_id


def test_advance_tracker_moves_from_the_expected_position(store: EventStore) -> None:
    add_items(store, 5)
    with store.transaction() as tx:
        tx.advance_tracker("fence_proc", 0, 3)
    with store.transaction() as tx:
        tx.advance_tracker("fence_proc", 3, 5)
    assert store.get_tracker("fence_proc") == 5


def test_advance_tracker_from_a_stale_position_fails_and_writes_nothing(
    store: EventStore,
) -> None:
    add_items(store, 5)
    store.set_tracker("fence_proc", 4)
    agg = new_id()
    with pytest.raises(TrackerError, match="another instance"), open_tables(store) as tx:
        tx.insert_many("trackers", [{"name": "fence_other", "position": 1, "updated_at": 0.0}])
        tx.advance_tracker("fence_proc", 2, 5)
    assert store.get_tracker("fence_proc") == 4
    assert "fence_other" not in store.trackers()
    assert store.aggregate_version(agg) == 0


def test_two_instances_racing_on_one_processor_apply_every_event_once(
    store_spec: StoreSpec,
) -> None:
    first = store_spec.opened[0]
    total = 0
    for _ in range(6):
        total += len(add_items(first, 250))
    stores = [first, store_spec.open()]
    errors: list[BaseException] = []

    def instance(store: EventStore) -> None:
        projector = ItemCounts()
        projector.batch_size = 50
        try:
            run_processor(projector, store, stop=threading.Event(), once=True,
                          retry=ConstantRetry(interval=0.0, sleep=lambda s: None))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=instance, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive()
    assert errors == []
    assert sum(counts(first).values()) == total
