"""Fencing: each batch moves the tracker by compare-and-set, so two live instances of one
processor (a lock lost unnoticed, a misconfigured deployment) never apply an event twice.

The compare-and-set itself (``Transaction.advance_tracker``) is part of the store contract:
``esctl_lib/testing/contract/trackers.py``."""

from __future__ import annotations

import threading

from esctl_lib import EventStore
from esctl_lib.processing import ConstantRetry, run_processor
from tests.backends import StoreSpec
from tests.processing.helpers import ItemCounts, add_items, counts


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
