"""The store contract of ``esctl_lib.testing``, run on every backend of ``tests/backends.py``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from esctl_lib import Event, EventStore
from esctl_lib.testing import EventStoreContract
from esctl_lib.testing.contract.ordering import append_out_of_order
from tests.backends import Location, backend_params, fresh_location


class TestEveryBackend(EventStoreContract):
    """Memory, a SQLite file and a PostgreSQL schema, each fresh per test."""

    location: Location

    @pytest.fixture(autouse=True, params=backend_params())
    def backend(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
        # autouse: pytest sets this up before the contract's ``store`` fixture, and tears
        # it down (dropping a PostgreSQL schema) after the stores are closed
        with fresh_location(request.param, tmp_path) as location:
            self.location = location
            yield location.backend

    def make_store(self) -> EventStore:
        return self.location.open()

    def open_again(self) -> EventStore | None:
        return None if self.location.backend == "memory" else self.location.open()

    def store_opener(self) -> Callable[[], EventStore] | None:
        if self.location.backend == "memory":
            return None
        return functools.partial(self.location.open)

    def commit_out_of_order(
        self, store: EventStore, first: Event, second: Event
    ) -> list[Event] | None:
        if self.location.backend != "postgres":
            return None
        return append_out_of_order(store, first, second)
