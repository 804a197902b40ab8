"""The store contract run through the asyncio API, on every backend of ``tests/backends.py``.

:class:`SyncOverAsync` turns each contract call into a coroutine of the async store on an
event loop of its own; what the async API does not offer goes to the blocking store on the
same data (see ``sync_over_async.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from esctl_lib import Event, EventStore
from esctl_lib.testing import EventStoreContract
from esctl_lib.testing.contract.ordering import append_out_of_order
from tests.backends import Location, backend_params, fresh_location
from tests.conformance.sync_over_async import SyncOverAsync, open_sync_over_async


class TestEveryBackendThroughAsyncio(EventStoreContract):
    """Memory, a SQLite file and a PostgreSQL schema, each fresh per test, through asyncio."""

    location: Location

    @pytest.fixture(autouse=True, params=backend_params())
    def backend(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
        with fresh_location(request.param, tmp_path) as location:
            self.location = location
            yield location.backend

    def make_store(self) -> EventStore:
        return SyncOverAsync(self.location.url, schema=self.location.schema)

    def open_again(self) -> EventStore | None:
        return None if self.location.backend == "memory" else self.make_store()

    def store_opener(self) -> Callable[[], EventStore] | None:
        if self.location.backend == "memory":
            return None
        return functools.partial(open_sync_over_async, self.location.url, self.location.schema)

    def commit_out_of_order(
        self, store: EventStore, first: Event, second: Event
    ) -> list[Event] | None:
        if self.location.backend != "postgres":
            return None
        return append_out_of_order(store, first, second)
