"""``LISTEN`` for the async PostgreSQL store: one task and one dedicated async connection.

The async twin of :class:`~esctl_lib.stores.postgres.listen.Listener`: a generation
counter moves on every notification and after every (re)connection (notifications sent
while the connection was down are lost), and waiters wait for it to move. A notification
is only a hint; waiters always check the table. Notifications are *sent* by the sync
:class:`~esctl_lib.stores.postgres.listen.Notifier` (its own thread and connection, the
same pacing), which a writer only pokes: that costs the event loop no I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import sql

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
