"""Parked events: a backend keeps a processor's given-up events beside its tracker."""

from __future__ import annotations

import threading
from typing import Any

from esctl_lib.aggregates import handles
from esctl_lib.events import Event
from esctl_lib.processing import (
    NoRetry,
    Projector,
    list_parked,
    process_parked,
    retry_parked,
    run_processor,
)
from esctl_lib.stores.base import EventStore
from esctl_lib.testing.contract.base import ContractBase, added, new_id
from esctl_lib.testing.contract.events import ConfItemAdded


class _Picky(Projector):
    """Fails on the events whose ids are in ``poison``; remembers the others (a batch
    that fails is rolled back and run again, so an event may be remembered twice)."""

    name = "conf_picky"

    def __init__(self, *poison: int) -> None:
        self.poison = set(poison)
        self.applied: list[int] = []

    @handles(ConfItemAdded)
    def _added(self, event: Event, tx: Any) -> None:
        if event.id in self.poison:
            raise ValueError(f"cannot take event {event.id}")
        self.applied.append(event.id or 0)


def _run_once(processor: _Picky, store: EventStore) -> None:
    run_processor(processor, store, stop=threading.Event(), once=True,
                  retry=NoRetry(max_attempts=1))


class ParkingContract(ContractBase):
    """Parking goes through the store: a parked event, its retry queue, its removal."""

    def test_a_failing_event_is_parked_and_the_tracker_moves_past_it(
        self, store: EventStore
    ) -> None:
        agg = new_id()
        stored = store.append([added(agg), added(agg), added(agg)])
        picky = _Picky(2)
        _run_once(picky, store)
        parked = list_parked(store)
        assert [(p.processor, p.event_id, p.event_uuid, p.event_type) for p in parked] == [
            ("conf_picky", 2, stored[1].uuid, "conf_item_added")]
        assert "cannot take event 2" in parked[0].error
        assert store.get_tracker("conf_picky") == 3
        assert picky.applied[-1] == 3  # the batch went on past the parked event

    def test_a_parked_event_is_queued_for_a_retry(self, store: EventStore) -> None:
        store.append([added()])
        _run_once(_Picky(1), store)
        assert [p.queued for p in list_parked(store)] == [False]
        assert retry_parked(store, "conf_picky") == 1
        assert [p.queued for p in list_parked(store)] == [True]

    def test_a_retried_event_that_now_works_is_unparked(self, store: EventStore) -> None:
        store.append([added()])
        picky = _Picky(1)
        _run_once(picky, store)
        retry_parked(store, "conf_picky")
        picky.poison.clear()
        assert process_parked(picky, store).succeeded == 1
        assert (picky.applied[-1:], list_parked(store)) == ([1], [])
