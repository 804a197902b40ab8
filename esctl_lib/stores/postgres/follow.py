"""A processor's own wake-ups on PostgreSQL: it waits and reads on one connection.

The store's shared :class:`~esctl_lib.stores.postgres.listen.Listener` hears notifications
on a thread of its own and wakes waiters through a condition; each wake-up then costs a
hand-off between threads (up to milliseconds while the machine is busy) and a read on a
pool connection whose backend has slept since the last one. A :class:`Follower` does both
on the caller's thread and on one connection that ``LISTEN``s: the notification wakes the
thread that reads, and the read goes to the backend that has just delivered it.

Nothing is lost in between: notifications that arrive while the connection runs a read
are kept by the driver and wake the next :meth:`Follower.wait`. After its connection is
lost, the call raises :class:`StoreUnavailableError`; the next call connects again and,
since notifications sent meanwhile are gone, looks at the table before it waits.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from esctl_lib.errors import StoreError, StoreUnavailableError
from esctl_lib.stores.base import DEFAULT_PAGE_SIZE, Page
from esctl_lib.stores.postgres.errors import DRIVER_ERRORS, connect_error, translate
from esctl_lib.stores.postgres.reads import Reads

if TYPE_CHECKING:
    from esctl_lib.stores.postgres.store import PostgresStore

#: A waiting follower looks at its connection at least this often (a dead peer that
#: sent nothing is found then; a terminated backend is found at once).
MAX_QUIET = 5.0


class Follower:
    """One worker's ``wait`` and ``read_page_parked`` on a connection of its own (see the
    module docstring). For one thread at a time; :meth:`close` when done."""

    def __init__(self, store: PostgresStore, *, where: str = "the server",
                 secrets: tuple[str, ...] = ()) -> None:
        self._store = store
        self._where = where
        self._secrets = secrets
        self._listen = sql.SQL("LISTEN {}").format(sql.Identifier(store.channel))
        self._reads = Reads(store, connection=self._checkout)
        self._conn: psycopg.Connection[Any] | None = None
        self._pid = os.getpid()
        #: Where the last read on this connection found nothing more (None: unknown).
        self._caught_up: int | None = None

    @property
    def backend_pid(self) -> int | None:
        """The backend pid of the connection (None while there is none)."""
        conn = self._conn
        return None if conn is None or conn.closed else conn.info.backend_pid

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is not None and not conn.closed and self._pid == os.getpid():
            return conn
        if self._pid != os.getpid():  # a fork: the parent's connection is not ours to use
            self._conn, self._pid = None, os.getpid()
        elif conn is not None:
            self._drop()
        store = self._store
        if store._closed:
            raise StoreError("the store is closed")
        try:
            conn = store._dedicated("follow")
        except DRIVER_ERRORS as e:
            raise connect_error(e, self._where, self._secrets) from None
        try:
            conn.execute(self._listen)
        except DRIVER_ERRORS as e:
            conn.close()
            raise translate(e) from e
        self._conn, self._caught_up = conn, None
        return conn

    @contextmanager
    def _checkout(self) -> Iterator[psycopg.Connection[Any]]:
        conn = self._connection()
        try:
            yield conn
        except StoreUnavailableError:
            self._drop()
            raise

    def _drop(self) -> None:
        conn, self._conn, self._caught_up = self._conn, None, None
        if conn is not None:
            with suppress(*DRIVER_ERRORS):
                conn.close()

    def wait(self, position: int, timeout: float) -> bool:
        """:meth:`EventStore.wait <esctl_lib.stores.base.EventStore.wait>` on this
        connection: True as soon as something may be readable after ``position``."""
        if self._store._closed:
            self._drop()
            raise StoreError("the store is closed")
        deadline = time.monotonic() + timeout
        conn = self._connection()
        # The last read here found nothing after ``position``: what is committed since has
        # notified (or will), so wait for that instead of looking again.
        look = self._caught_up != position
        self._caught_up = None
        while True:
            if look and self._reads.readable_after(position):
                return True
            look = True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            step = min(self._store.poll_interval, MAX_QUIET, remaining)
            try:
                woken = any(True for _ in conn.notifies(timeout=step, stop_after=1))
                if woken:  # one read answers every notification already here
                    for _ in conn.notifies(timeout=0):
                        pass
            except DRIVER_ERRORS as e:
                self._drop()
                raise translate(e) from e
            if woken:
                return True
            conn = self._connection()

    def read_page_parked(self, position: int, processor: str, *,
                         types: Collection[str] | None = None,
                         limit: int = DEFAULT_PAGE_SIZE,
                         partition: tuple[int, int] | None = None,
                         ) -> tuple[Page, dict[int, int]]:
        """:meth:`PostgresStore.read_page_parked
        <esctl_lib.stores.postgres.store.PostgresStore.read_page_parked>` on this
        connection."""
        page, parked = self._reads.page_parked(position, processor, types=types,
                                               limit=limit, partition=partition)
        self._caught_up = page.end if len(page.events) < limit else None
        return page, parked

    def close(self) -> None:
        """Close the connection (a later call would open a new one)."""
        if self._pid == os.getpid():
            self._drop()
        else:
            self._conn = None
