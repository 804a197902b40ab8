"""The hooks a backend fills in, the ``store`` fixture built on them, and shared helpers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from esctl_lib.events import Event
from esctl_lib.stores.base import EventStore
from esctl_lib.testing.contract.events import ConfItemAdded, ConfItemRemoved, ConfRareThing


class ContractBase:
    """Hooks of :class:`~esctl_lib.testing.EventStoreContract`; override ``make_store``.

    pytest makes one instance of the test class per test, so a hook may keep state on
    ``self``; ``self.tmp_path`` is the test's temporary folder when ``make_store`` runs.
    """

    tmp_path: Path

    def make_store(self) -> EventStore:
        """A fresh, empty store for one test (the contract calls ``setup()`` on it)."""
        raise NotImplementedError(f"{type(self).__name__} must define make_store()")

    def open_again(self) -> EventStore | None:
        """Another store object on the same data as ``make_store``'s (a second connection),
        or None when the data lives in that one object (an in-process store)."""
        return None

    def store_opener(self) -> Callable[[], EventStore] | None:
        """A picklable callable opening the same data in another process, or None.

        With None, the concurrent-writers case runs its writers as threads of this process.
        """
        return None

    def drop_store(self) -> None:
        """Called after each test, once every store the contract opened is closed."""

    def commit_out_of_order(
        self, store: EventStore, first: Event, second: Event
    ) -> list[Event] | None:
        """Append ``first``, then ``second``, so that ``first`` gets the smaller id yet lies
        after ``second`` in the stream; return them as stored, in stream order. None (the
        default) for a backend whose stream is in id order, where commits cannot be
        interleaved so (``contract.ordering.append_out_of_order`` does it on PostgreSQL).
        """
        return None

    # -- fixtures and helpers --------------------------------------------------------------
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[EventStore]:
        """The test's fresh, set-up store; every store opened through the hooks is closed after."""
        self.tmp_path = tmp_path
        self._opened: list[EventStore] = []
        try:
            first = self.make_store()
            self._opened.append(first)
            first.setup()
            yield first
        finally:
            for opened in self._opened:
                opened.close()
            self.drop_store()

    def second_store(self, store: EventStore) -> EventStore:
        """``open_again()`` (closed after the test), or ``store`` itself when there is none."""
        again = self.open_again()
        if again is None:
            return store
        self._opened.append(again)
        return again


def new_id() -> str:
    return str(uuid.uuid4())


def added(agg: str | None = None, **body: object) -> ConfItemAdded:
    return ConfItemAdded(aggregate_id=agg or new_id(), body=body)


def fill(store: EventStore) -> list[Event]:
    """Ten events: ids 1..10; removed at 3, 6, 9; one rare at 10."""
    out = []
    for i in range(1, 11):
        agg = new_id()
        if i == 10:
            event: Event = ConfRareThing(aggregate_id=agg)
        elif i % 3 == 0:
            event = ConfItemRemoved(aggregate_id=agg)
        else:
            event = ConfItemAdded(aggregate_id=agg, body={"i": i})
        out.extend(store.append([event]))
    return out
