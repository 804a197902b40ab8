"""A blocking :class:`EventStore` that does its work through an :class:`AsyncEventStore`,
so that the store contract runs through the async API.

An event loop runs in a thread of its own; each call is a coroutine of the async store run
on it (``run_coroutine_threadsafe``). Appends, reads, counts, uuid look-ups, stream keys,
trackers' positions and waits (so ``subscribe`` too) go through the async store; what the
async API does not offer (transactions, tracker moves, processor locks, shadow tables)
goes to its :attr:`~AsyncEventStore.sync` store on the same data.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Collection, Coroutine, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from esctl_lib import EventStore, Page, ProcessorLock, ReaderHorizon, Transaction, open_async_store
from esctl_lib.events import Event
from esctl_lib.stores.aio import AsyncEventStore
from esctl_lib.stores.base import DEFAULT_PAGE_SIZE, Snapshot, SnapshotInfo, StreamKey
from esctl_lib.stores.shadow import TableShadow

T = TypeVar("T")


class SyncOverAsync(EventStore):
    """The blocking store contract over an async store; see the module docstring."""

    def __init__(self, url: str, *, schema: str | None = None, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="esctl-test-loop")
        self._thread.start()
        self.aio: AsyncEventStore = self._call(_open(url, schema, kwargs))
        super().__init__(registry=self.aio.registry, encoder=self.aio.encoder)
        self.backend = self.aio.backend
        self.display_url = self.aio.display_url
        self.remote_reads = self.aio.sync.remote_reads
        self._closed = False

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self.aio.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    # -- through the async store ---------------------------------------------------------
    def setup(self) -> list[str]:
        return self._call(self.aio.setup())

    def schema_version(self) -> int:
        return self._call(self.aio.schema_version())

    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        return self._call(self.aio.append(events, expected_version=expected_version))

    def read_page(self, position: int, *, types: Collection[str] | None = None,
                  limit: int = DEFAULT_PAGE_SIZE, until: int | None = None) -> Page:
        return self._call(self.aio.read_page(position, types=types, limit=limit, until=until))

    def read_aggregate(self, aggregate_id: Any, *, from_version: int = 1) -> list[Event]:
        return self._call(self.aio.read_aggregate(aggregate_id, from_version=from_version))

    def aggregate_version(self, aggregate_id: Any) -> int:
        return self._call(self.aio.aggregate_version(aggregate_id))

    def latest_position(self, *, types: Collection[str] | None = None) -> int:
        return self._call(self.aio.latest_position(types=types))

    def count(self, *, after: int = 0, types: Collection[str] | None = None) -> int:
        return self._call(self.aio.count(after=after, types=types))

    def existing_uuids(self, uuids: Collection[str]) -> set[str]:
        return self._call(self.aio.existing_uuids(uuids))

    def read_by_uuids(self, uuids: Collection[str]) -> list[Event]:
        return self._call(self.aio.read_by_uuids(uuids))

    def stream_keys(self, positions: Collection[int]) -> dict[int, StreamKey]:
        return self._call(self.aio.stream_keys(positions))

    def get_tracker(self, name: str) -> int:
        return self._call(self.aio.get_tracker(name))

    def wait(self, position: int, timeout: float) -> bool:
        return self._call(self.aio.wait(position, timeout))

    # -- what the async API leaves to the blocking store on the same data -----------------
    def transaction(self) -> AbstractContextManager[Transaction]:
        return self.aio.sync.transaction()

    def processor_lock(self, name: str) -> ProcessorLock:
        return self.aio.sync.processor_lock(name)

    def table_shadow(self, key: str, tables: Sequence[str]) -> TableShadow:
        return self.aio.sync.table_shadow(key, tables)

    def reader_horizon(self) -> ReaderHorizon | None:
        return self.aio.sync.reader_horizon()

    # Snapshots: the async API has none (AsyncRepository folds whole histories).
    def read_from_snapshot(
        self, aggregate_id: Any, aggregate_type: str, snapshot_version: int, *,
        tail: bool = True,
    ) -> tuple[Snapshot | None, list[Event]]:
        return self.aio.sync.read_from_snapshot(aggregate_id, aggregate_type,
                                                snapshot_version, tail=tail)

    def snapshots(self) -> list[SnapshotInfo]:
        return self.aio.sync.snapshots()

    def drop_snapshots(self, aggregate_type: str | None = None) -> int:
        return self.aio.sync.drop_snapshots(aggregate_type)


async def _open(url: str, schema: str | None, kwargs: dict[str, Any]) -> AsyncEventStore:
    return open_async_store(url, schema=schema, **kwargs)


def open_sync_over_async(url: str, schema: str | None = None) -> SyncOverAsync:
    """Picklable opener for the contract's other-process writers."""
    return SyncOverAsync(url, schema=schema)
