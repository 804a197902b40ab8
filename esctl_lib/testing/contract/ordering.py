"""Stream order, not id order: everything that compares positions asks the store.

On PostgreSQL a transaction takes its place in the stream at its first write, so an event
may get a greater id than one committed after it and still come first. The hook
:meth:`ContractBase.commit_out_of_order` makes that happen where a backend can; on one
whose stream is in id order the same cases run on two events appended one after another.
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest

from esctl_lib.aggregates import handles
from esctl_lib.errors import InvalidEventError
from esctl_lib.events import Event
from esctl_lib.operations.processors import reset_processor
from esctl_lib.operations.status import status_report
from esctl_lib.operations.streams import tail_events
from esctl_lib.operations.transfer import export_events
from esctl_lib.processing import NoRetry, Projector, is_readable, run_processor, wait_for
from esctl_lib.stores.base import EventStore
from esctl_lib.testing.contract.base import ContractBase, added, new_id
from esctl_lib.testing.contract.events import ConfItemAdded
from esctl_lib.testing.polling import eventually

#: A tracker row the interleaving transaction writes first (to take its place) and removes.
_PLACE = "conf_ordering_place"


def append_out_of_order(store: EventStore, first: Event, second: Event) -> list[Event]:
    """Commit ``first`` with the smaller id but after ``second`` in the stream, on a store
    whose transactions run side by side and are ordered by when they first write
    (PostgreSQL); returns both as stored, in stream order, once both are readable.

    Transaction B writes first (a tracker row, removed again), then ``first`` is appended
    and committed on its own, then B appends ``second`` and commits.
    """
    with store.transaction() as b:
        b.will_append()  # it appends after its first write: it says so before that write
        b.reset_tracker(_PLACE, 0)
        early = store.append([first])[0]
        late = b.append([second])[0]
        b.execute(f"DELETE FROM trackers WHERE name = {b.placeholder}", (_PLACE,))
    stored = [late, early]
    _readable(store, stored)
    return stored


def _readable(store: EventStore, stored: list[Event]) -> None:
    # Other transactions of a shared server may hold PostgreSQL's readers back a moment.
    ids = [e.id for e in stored]
    eventually(lambda: [e.id for e in store.read_page(0).events][-2:] == ids, timeout=30,
               what=f"events {ids} to be readable in that order")


class _Seen(Projector):
    """Remembers the ids of the events it handles, in the order handled."""

    name = "conf_ordering_seen"

    def __init__(self) -> None:
        self.handled: list[int] = []

    @handles(ConfItemAdded)
    def _added(self, event: Event, tx: Any) -> None:
        self.handled.append(event.id or 0)


def _run_once(processor: _Seen, store: EventStore) -> None:
    run_processor(processor, store, stop=threading.Event(), once=True,
                  retry=NoRetry(max_attempts=1))


def _exported(store: EventStore, after: int) -> list[int]:
    out = io.StringIO()
    export_events(store, out, after=after)
    return [json.loads(line)["id"] for line in out.getvalue().splitlines()]


class OrderingContract(ContractBase):
    """Positions compared in stream order: tail, reset, export, lag and wait_for."""

    def _pair(self, store: EventStore) -> list[Event]:
        """Two events of one aggregate, as stored, in stream order: out of id order where
        the backend can commit so, else one after the other."""
        agg = new_id()
        first, second = added(agg, n=1), added(agg, n=2)
        stored = self.commit_out_of_order(store, first, second)
        if stored is None:
            stored = [store.append([first])[0], store.append([second])[0]]
            _readable(store, stored)
        return stored

    def test_the_stream_keys_order_positions_as_the_stream_reads_them(
        self, store: EventStore
    ) -> None:
        x, y = self._pair(store)
        assert x.id is not None and y.id is not None
        keys = store.stream_keys([0, x.id, y.id])
        assert keys[0] < keys[x.id] < keys[y.id]
        assert (keys[x.id].id, keys[y.id].id) == (x.id, y.id)
        assert store.stream_key(y.id) == keys[y.id]
        assert [e.id for e in store.read_page(0).events] == [x.id, y.id]

    def test_the_tail_of_an_aggregate_shows_each_readable_event_in_stream_order(
        self, store: EventStore
    ) -> None:
        x, y = self._pair(store)
        assert x.id is not None and y.id is not None
        agg = x.aggregate_id
        assert [e.id for e in tail_events(store, aggregate_id=agg)] == [x.id, y.id]
        assert [e.id for e in tail_events(store, aggregate_id=agg, after=x.id)] == [y.id]
        assert [e.id for e in tail_events(store, aggregate_id=agg, after=y.id)] == []
        assert [e.id for e in tail_events(store, aggregate_id=agg, last=1)] == [y.id]
        everything = [e.id for e in tail_events(store)]
        assert everything == [x.id, y.id]

    def test_a_reset_to_a_readable_position_processes_exactly_the_events_after_it(
        self, store: EventStore
    ) -> None:
        x, y = self._pair(store)
        assert x.id is not None and y.id is not None
        seen = _Seen()
        _run_once(seen, store)
        assert seen.handled == [x.id, y.id]
        assert reset_processor(store, seen.name, position=x.id) == y.id
        assert store.get_tracker(seen.name) == x.id
        again = _Seen()
        _run_once(again, store)
        assert again.handled == [y.id]
        reset_processor(store, seen.name, position=y.id)
        last = _Seen()
        _run_once(last, store)
        assert last.handled == []

    def test_a_reset_past_every_stored_event_is_refused(self, store: EventStore) -> None:
        x, y = self._pair(store)
        beyond = max(x.id or 0, y.id or 0) + 1
        with pytest.raises(InvalidEventError, match="past the head"):
            reset_processor(store, _Seen.name, position=beyond)
        assert store.get_tracker(_Seen.name) == 0

    def test_an_export_slice_holds_exactly_the_events_after_its_start(
        self, store: EventStore
    ) -> None:
        x, y = self._pair(store)
        assert x.id is not None and y.id is not None
        assert _exported(store, 0) == [x.id, y.id]
        assert _exported(store, x.id) == [y.id]
        assert _exported(store, y.id) == []

    def test_lag_counts_the_events_after_the_tracker_in_stream_order(
        self, store: EventStore
    ) -> None:
        x, y = self._pair(store)
        assert x.id is not None and y.id is not None
        seen = _Seen()
        assert x.created_at is not None and y.created_at is not None
        later = max(x.created_at.timestamp(), y.created_at.timestamp()) + 60

        def lag(position: int) -> tuple[int, float]:
            store.reset_tracker(seen.name, position)
            [row] = status_report(store, [seen], now=later).processors
            return row.lag_events, row.lag_seconds

        assert lag(0)[0] == 2
        events, seconds = lag(x.id)
        assert events == 1
        assert seconds == pytest.approx(later - y.created_at.timestamp(), abs=0.01)
        assert lag(y.id) == (0, 0.0)

    def test_wait_for_returns_once_the_tracker_is_past_the_event_in_stream_order(
        self, store: EventStore
    ) -> None:
        x, y = self._pair(store)
        assert x.id is not None and y.id is not None
        assert is_readable(store, x.id) and is_readable(store, y.id)
        seen = _Seen()
        store.reset_tracker(seen.name, x.id)
        assert wait_for(store, seen.name, x.id, timeout=0)
        assert not wait_for(store, seen.name, y.id, timeout=0)
        store.reset_tracker(seen.name, y.id)
        assert wait_for(store, seen.name, x.id, timeout=0)
        assert wait_for(store, seen.name, y.id, timeout=0)

    def test_an_event_not_yet_committed_is_not_readable(self, store: EventStore) -> None:
        x, y = self._pair(store)
        beyond = max(x.id or 0, y.id or 0) + 1
        assert not is_readable(store, beyond)
        assert not wait_for(store, _Seen.name, beyond, timeout=0)
