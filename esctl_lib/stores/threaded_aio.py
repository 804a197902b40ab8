"""An :class:`~esctl_lib.stores.aio.AsyncEventStore` over a sync store on one worker thread.

For backends with no async driver (SQLite, memory). Every call runs the sync store on one
dedicated thread of this store (``run_in_executor`` on a one-thread executor), so the
event loop never blocks on a file lock, an fsync or a busy database, and the store keeps
one connection. One thread is no loss for SQLite: a file takes one writer at a time, and
queueing in-process writers on the thread costs less than their fighting over the busy
lock. The default executor of ``asyncio.to_thread`` is shared with the application and
would give the store a connection per pool thread, so it is not used.

Waiting never holds the worker: :meth:`wait` asks the worker whether something is
readable, then sleeps *on the loop* (with a backoff, up to ``max_poll`` seconds), woken
at once by an append made through this store. Another process's appends are seen at the
next poll. A cancelled call that already runs on the worker completes there (an append
cancelled in flight may have committed, as when a reply is lost on a network).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from esctl_lib.errors import StoreError
from esctl_lib.events import Event
from esctl_lib.stores.aio_base import AsyncEventStore
from esctl_lib.stores.base import DEFAULT_PAGE_SIZE, EventStore, Page, StreamKey

T = TypeVar("T")


class ThreadedAsyncStore(AsyncEventStore):
    """A sync store behind one worker thread; see the module docstring."""

    #: The first and the longest pause between two looks at the stream while waiting.
    min_poll = 0.002
    max_poll = 0.05

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self.display_url = store.display_url
        self.backend = store.backend
        self.registry = store.registry
        self.encoder = store.encoder
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"esctl-{store.backend}-aio")
        self._appended = asyncio.Event()
        self._closed = False

    @property
    def sync(self) -> EventStore:
        return self._store

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    # -- lifecycle -----------------------------------------------------------------------
    async def setup(self) -> list[str]:
        return await self._run(self._store.setup)

    async def schema_version(self) -> int:
        return await self._run(self._store.schema_version)

    async def close(self) -> None:
        if self._closed:
            return
        await self._run(self._store.close)
        self._closed = True
        self._executor.shutdown(wait=False)

    # -- writing -------------------------------------------------------------------------
    async def append(
        self, events: Sequence[Event], *, expected_version: int | None = None
    ) -> list[Event]:
        stored = await self._run(self._store.append, events, expected_version=expected_version)
        woken, self._appended = self._appended, asyncio.Event()
        woken.set()
        return stored

    # -- reading -------------------------------------------------------------------------
    async def read_page(
        self, position: int, *, types: Collection[str] | None = None,
        limit: int = DEFAULT_PAGE_SIZE, until: int | None = None,
    ) -> Page:
        return await self._run(self._store.read_page, position, types=types, limit=limit,
                               until=until)

    async def read_aggregate(self, aggregate_id: Any, *, from_version: int = 1) -> list[Event]:
        return await self._run(self._store.read_aggregate, aggregate_id,
                               from_version=from_version)

    async def aggregate_version(self, aggregate_id: Any) -> int:
        return await self._run(self._store.aggregate_version, aggregate_id)

    async def latest_position(self, *, types: Collection[str] | None = None) -> int:
        return await self._run(self._store.latest_position, types=types)

    async def count(self, *, after: int = 0, types: Collection[str] | None = None) -> int:
        return await self._run(self._store.count, after=after, types=types)

    async def existing_uuids(self, uuids: Collection[str]) -> set[str]:
        return await self._run(self._store.existing_uuids, list(uuids))

    async def read_by_uuids(self, uuids: Collection[str]) -> list[Event]:
        return await self._run(self._store.read_by_uuids, list(uuids))

    async def stream_keys(self, positions: Collection[int]) -> dict[int, StreamKey]:
        return await self._run(self._store.stream_keys, list(positions))

    async def get_tracker(self, name: str) -> int:
        return await self._run(self._store.get_tracker, name)

    # -- waiting -------------------------------------------------------------------------
    async def wait(self, position: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        delay = self.min_poll
        while True:
            appended = self._appended
            if await self._run(self._store.latest_position) > position:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(appended.wait(), min(delay, remaining))
                delay = self.min_poll
            except TimeoutError:
                delay = min(delay * 2, self.max_poll)
