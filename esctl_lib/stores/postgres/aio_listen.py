"""``LISTEN`` for the async PostgreSQL store: one task and one dedicated async connection.

The async twin of :class:`~esctl_lib.stores.postgres.listen.Listener`: a generation
counter moves on every notification and after every (re)connection (notifications sent
while the connection was down are lost), and waiters wait for it to move. A notification
is only a hint; waiters always check the table. :class:`AsyncNotifier` sends them, paced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import sql

from esctl_lib.stores.postgres.listen import TokenBucket

log = logging.getLogger("esctl.postgresql")
AsyncConnect = Callable[[], Awaitable["psycopg.AsyncConnection[Any]"]]


class AsyncListener:
    """``LISTEN`` on one channel from a task of the running loop."""

    def __init__(self, connect: AsyncConnect, channel: str, *, ping_interval: float = 5.0) -> None:
        self._connect = connect
        self._listen = sql.SQL("LISTEN {}").format(sql.Identifier(channel))
        self.ping_interval = ping_interval
        self.generation = 0
        self._changed = asyncio.Event()
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is up."""
        return self._listening.is_set()

    async def start(self, timeout: float) -> None:
        """Start the task (once) and give it up to ``timeout`` seconds to LISTEN."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                name="esctl-aio-listen")
        if not self._listening.is_set() and timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._listening.wait(), timeout)

    async def wait_changed(self, generation: int, timeout: float) -> bool:
        """Until the generation moves past ``generation``; False on timeout."""
        if self.generation != generation:
            return True
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop the task; its connection closes with it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._bump()

    def _bump(self) -> None:
        self.generation += 1
        woken, self._changed = self._changed, asyncio.Event()
        woken.set()

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                conn = await self._connect()
                async with conn:
                    await conn.execute(self._listen)
                    self._listening.set()
                    self._bump()
                    delay = 0.1
                    while True:
                        async for _ in conn.notifies(timeout=self.ping_interval):
                            self._bump()
                        await conn.execute("SELECT 1")  # a dead connection shows here
            except psycopg.Error as e:
                log.debug("esctl async listener connection lost (%s); reconnecting", e)
            finally:
                self._listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


class AsyncNotifier:
    """Sends ``pg_notify`` after commits from a task of the loop, on its own connection.

    Batching starts at 100 commits a second (the sync notifier's 500 would put a
    notification round trip on the loop for nearly every append of a busy writer); a
    busy writer's listeners then wake within ``busy_interval`` (25 ms) of a commit.

    The pacing of :class:`~esctl_lib.stores.postgres.listen.Notifier` (a token bucket:
    ``burst`` at once, refilled at ``rate`` a second; once it runs dry, one notification
    every ``busy_interval`` seconds covers all commits), but on the event loop: the sync
    notifier's thread took the GIL from the loop at every commit (``bench/async_store.py``
    measured it). A writer only calls :meth:`poke`, which does no I/O on the caller's path.
    """

    def __init__(self, connect: AsyncConnect, channel: str, *, rate: float = 100.0,
                 burst: int = 8, busy_interval: float = 0.025) -> None:
        self._connect = connect
        self._channel = channel
        self.busy_interval = busy_interval
        self._bucket = TokenBucket(rate, burst)
        self._pending = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None

    def poke(self) -> None:
        """Ask for a notification soon."""
        if self._pending:
            return
        self._pending = True
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                name="esctl-aio-notify")
        self._wake.set()

    async def close(self) -> None:
        """Send what is pending, then stop."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            if self._pending:
                await self._send()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            busy = not self._bucket.take()
            if busy:  # let this notification cover more commits
                await asyncio.sleep(self.busy_interval)
            self._pending = False
            await self._send()
            if busy:  # stay busy until the pace drops
                self._bucket.empty()

    async def _send(self) -> None:
        for _attempt in range(2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await self._connect()
                    await self._conn.execute("SET synchronous_commit = off")
                await self._conn.execute("SELECT pg_notify(%s, '')", (self._channel,))
                return
            except psycopg.Error as e:
                log.debug("esctl notify failed (%s); readers fall back to polling", e)
                if self._conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        await self._conn.close()
                self._conn = None
