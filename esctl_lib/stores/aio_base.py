"""The asyncio store contract (the factory is :func:`esctl_lib.stores.aio.open_async_store`).

:class:`AsyncEventStore` is the event store for code on an event loop (FastAPI,
Starlette, aiohttp): the same URLs as :func:`~esctl_lib.stores.open_store`, the same
events, errors and stream order, and no call that blocks the loop.

- **PostgreSQL** (``stores/postgres/aio.py``) is native: psycopg's ``AsyncConnection``
  and ``AsyncConnectionPool``, the sync store's SQL, decoding and error translation, and
  ``LISTEN`` on an async connection for :meth:`AsyncEventStore.wait`.
- **SQLite** and **memory** (``stores/threaded_aio.py``) run the sync store on one
  dedicated worker thread per store: sqlite3 has no async driver, a SQLite file takes
  one writer at a time anyway, and one thread keeps one connection (no busy-lock fights
  inside the process). Waiting never holds that thread: it polls on the loop.

What the async API does not offer (transactions with projector rows, processors, locks,
shadow tables) stays with the blocking store on the same data, :attr:`AsyncEventStore.sync`
— never to be called on the event loop.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any

from esctl_lib.errors import StoreUnavailableError
from esctl_lib.events import Event, EventRegistry
from esctl_lib.serialization import BodyEncoder
from esctl_lib.stores.base import DEFAULT_PAGE_SIZE, EventStore, Page, StreamKey

_FIRST_POLL = 0.002
_MAX_POLL = 0.05


class AsyncEventStore(ABC):
    """An event store for asyncio code; see the module docstring.

    Use it as ``async with open_async_store(url) as store:``; connections open on first
    use. Every method mirrors the one of the same name on :class:`EventStore`.
    """

    #: The store's URL with any password masked; safe to print.
    display_url: str = ""
    #: The backend's name: "memory", "sqlite" or "postgresql".
    backend: str = ""
    registry: EventRegistry
    encoder: BodyEncoder

    async def __aenter__(self) -> AsyncEventStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    @abstractmethod
    def sync(self) -> EventStore:
        """A blocking store on the same data, for what the async API lacks (transactions,
        processors). Never call it on the event loop: use ``asyncio.to_thread``."""

    # -- lifecycle -----------------------------------------------------------------------
    @abstractmethod
    async def setup(self) -> list[str]:
        """Create or upgrade the schema (see :meth:`EventStore.setup`)."""

    @abstractmethod
    async def schema_version(self) -> int:
        """The schema version in the database (0 when not set up)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and threads. The store cannot be used afterwards."""

    # -- writing -------------------------------------------------------------------------
    @abstractmethod
    async def append(
        self, events: Sequence[Event], *, expected_version: int | None = None
    ) -> list[Event]:
        """Append one aggregate's events atomically (see :meth:`EventStore.append`)."""

    # -- reading -------------------------------------------------------------------------
    @abstractmethod
    async def read_page(
        self,
        position: int,
        *,
        types: Collection[str] | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        until: int | None = None,
    ) -> Page:
        """Events after ``position`` in stream order (see :meth:`EventStore.read_page`)."""

    async def read(
        self,
        position: int = 0,
        *,
        types: Collection[str] | None = None,
        limit: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[Event]:
        """Every readable event after ``position`` (of ``types``, at most ``limit``),
        page by page in constant memory; ends at the readable head."""
        left = limit
        while left is None or left > 0:
            size = page_size if left is None else min(page_size, left)
            page = await self.read_page(position, types=types, limit=size)
            for event in page.events:
                yield event
            if left is not None:
                left -= len(page.events)
            if page.end == position or len(page.events) < size:
                return
            position = page.end

    async def read_after(
        self, position: int, *, types: Collection[str] | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
    ) -> list[Event]:
        """Events after ``position`` in stream order, at most ``limit``."""
        return (await self.read_page(position, types=types, limit=limit)).events

    @abstractmethod
    async def read_aggregate(self, aggregate_id: Any, *, from_version: int = 1) -> list[Event]:
        """One aggregate's events in version order, starting at ``from_version``."""

    @abstractmethod
    async def aggregate_version(self, aggregate_id: Any) -> int:
        """An aggregate's current version (0 when it has no events)."""

    @abstractmethod
    async def latest_position(self, *, types: Collection[str] | None = None) -> int:
        """The position of the newest readable event (of ``types``), 0 when there is none."""

    @abstractmethod
    async def count(self, *, after: int = 0, types: Collection[str] | None = None) -> int:
        """How many readable events lie after ``after`` (of ``types``)."""

    @abstractmethod
    async def existing_uuids(self, uuids: Collection[str]) -> set[str]:
        """Which of these event uuids are already stored."""

    @abstractmethod
    async def read_by_uuids(self, uuids: Collection[str]) -> list[Event]:
        """The stored events with these uuids (see :meth:`EventStore.read_by_uuids`)."""

    @abstractmethod
    async def stream_keys(self, positions: Collection[int]) -> dict[int, StreamKey]:
        """Keys that compare as the stream is ordered (see :meth:`EventStore.stream_keys`)."""

    @abstractmethod
    async def get_tracker(self, name: str) -> int:
        """A processor's tracker position (0 when it has none)."""

    # -- waiting -------------------------------------------------------------------------
    @abstractmethod
    async def wait(self, position: int, timeout: float) -> bool:
        """Until an event after ``position`` may be readable (True) or ``timeout`` passes
        (False). A True may be a false alarm: read and wait again."""

    async def wait_for(
        self, position: int, timeout: float, *, processor: str | None = None
    ) -> bool:
        """Read your writes: wait up to ``timeout`` seconds until the committed event at
        ``position`` is readable from the stream or, with ``processor``, until that
        processor's tracker has reached it (its read model shows it). True if it did.

        A lost connection is retried until the deadline, then raised.
        """
        deadline = time.monotonic() + timeout
        delay = _FIRST_POLL
        while True:
            try:
                if await self._has_reached(position, processor):
                    return True
            except StoreUnavailableError:
                if time.monotonic() >= deadline:
                    raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if processor is None:
                await self.wait(position - 1, min(remaining, 0.25))
            else:
                await asyncio.sleep(min(delay, remaining))
                delay = min(delay * 2, _MAX_POLL)

    async def _has_reached(self, position: int, processor: str | None) -> bool:
        if position <= 0:
            return True
        head = await self.latest_position()
        wanted = [position, head]
        tracker = 0
        if processor is not None:
            tracker = await self.get_tracker(processor)
            wanted.append(tracker)
        keys = await self.stream_keys(wanted)
        # The event is stored (a fixed place in the stream) and not after the readable head.
        readable = keys[position].id == position and keys[position] <= keys[head]
        return readable and (processor is None or keys[tracker] >= keys[position])

    async def subscribe(
        self,
        position: int = 0,
        *,
        types: Collection[str] | None = None,
        batch_size: int = DEFAULT_PAGE_SIZE,
        idle_timeout: float = 1.0,
    ) -> AsyncIterator[Page]:
        """Follow the stream from ``position`` for ever: non-empty pages, in order.

        Stop by leaving the ``async for`` (or cancelling the task). A lost connection is
        retried with a bounded backoff from the same position, as
        :meth:`EventStore.subscribe` does, so every event is yielded once.
        """
        delay = 0.0
        while True:
            try:
                page = await self.read_page(position, types=types, limit=batch_size)
                delay = 0.0
                if page.events:
                    yield page
                position = page.end
                if len(page.events) < batch_size:
                    await self.wait(position, idle_timeout)
            except StoreUnavailableError:
                delay = min(2.0, delay * 2 if delay else 0.05)
                await asyncio.sleep(delay)
