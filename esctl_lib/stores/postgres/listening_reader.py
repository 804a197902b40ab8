"""A processor's own wake-ups on PostgreSQL: it waits and reads on one connection.

The store's shared :class:`~esctl_lib.stores.postgres.listen.Listener` hears notifications
on a thread of its own and wakes waiters through a condition; each wake-up then costs a
hand-off between threads (up to milliseconds while the machine is busy) and a read on a
pool connection whose backend has slept since the last one. A :class:`ListeningReader`
does both on the caller's thread and on one connection that ``LISTEN``s: the notification
wakes the thread that reads, and the read goes to the backend that has just delivered it.

Nothing is lost in between: notifications that arrive while the connection runs a read
are kept by the driver; a read first takes those that came before it (it answers them),
and those that come during it wake the next :meth:`ListeningReader.wait`. After its
connection is lost, the call raises :class:`StoreUnavailableError`; the next call connects
again and, since notifications sent meanwhile are gone, looks at the table before it
waits.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from esctl_lib.errors import StoreError, StoreUnavailableError
from esctl_lib.stores.base import DEFAULT_PAGE_SIZE, Page, StreamKey
from esctl_lib.stores.postgres.errors import DRIVER_ERRORS, connect_error, translate
from esctl_lib.stores.postgres.reads import Reads

if TYPE_CHECKING:
    from esctl_lib.stores.postgres.store import PostgresStore

#: A waiting reader looks at its connection at least this often (a dead peer that sent
#: nothing is found then; a terminated backend is found at once).
MAX_QUIET = 5.0
#: Connections a forked child found open: never closed there (the parent owns them).
_ORPHANED: list[Any] = []


class ListeningReader:
    """One worker's ``wait`` and ``read_page_parked`` on a connection of its own (see the
    module docstring), made by :meth:`PostgresStore.listening_reader
    <esctl_lib.stores.postgres.store.PostgresStore.listening_reader>`. For one thread at a
    time; :meth:`close` when done.

    ``connect`` opens a configured autocommit connection, ``closed`` tells whether the
    store is closed, and ``where`` and ``secrets`` name the server and what to redact in
    a connection error.
    """

    def __init__(self, store: PostgresStore, *, connect: Callable[[], psycopg.Connection[Any]],
                 closed: Callable[[], bool], where: str, secrets: tuple[str, ...]) -> None:
        self._store = store
        self._connect = connect
        self._closed = closed
        self._where = where
        self._secrets = secrets
        self._listen = sql.SQL("LISTEN {}").format(sql.Identifier(store.channel))
        self._reads = Reads(store, connection=self._checkout)
        self._conn: psycopg.Connection[Any] | None = None
        self._pid = os.getpid()
        #: Where the last read on this connection found nothing more (None: unknown).
        self._caught_up: int | None = None
        #: Where the last read on this connection ended caught up; unlike ``_caught_up``,
        #: kept through waits (it chooses :meth:`read_page_parked`'s statement).
        self._read_to: int | None = None
        #: (a position, its stream key), learnt from the last row of a wake-up's scan.
        self._key: tuple[int, StreamKey] | None = None

    @property
    def backend_pid(self) -> int | None:
        """The backend pid of the connection (None while there is none)."""
        conn = self._conn
        return None if conn is None or conn.closed else conn.info.backend_pid

    def _connection(self) -> psycopg.Connection[Any]:
        if self._closed():
            self._drop()
            raise StoreError("the store is closed")
        conn = self._conn
        if conn is not None and not conn.closed and self._pid == os.getpid():
            return conn
        if self._pid != os.getpid():  # a fork: the parent's connection is not ours
            _ORPHANED.append(conn)
            self._conn, self._pid = None, os.getpid()
        elif conn is not None:
            self._drop()
        try:
            conn = self._connect()
        except DRIVER_ERRORS as e:
            raise connect_error(e, self._where, self._secrets) from None
        try:
            conn.execute(self._listen)
        except DRIVER_ERRORS as e:
            conn.close()
            raise translate(e) from e
        self._conn, self._caught_up, self._read_to, self._key = conn, None, None, None
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
        self._read_to = self._key = None
        if conn is not None:
            with suppress(*DRIVER_ERRORS):
                conn.close()

    def _drain(self, conn: psycopg.Connection[Any]) -> None:
        """Take the notifications already here (without waiting for any)."""
        try:
            for _ in conn.notifies(timeout=0):
                pass
        except DRIVER_ERRORS as e:
            self._drop()
            raise translate(e) from e

    def wait(self, position: int, timeout: float) -> bool:
        """:meth:`EventStore.wait <esctl_lib.stores.base.EventStore.wait>` on this
        connection: True as soon as something may be readable after ``position``."""
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
            except DRIVER_ERRORS as e:
                self._drop()
                raise translate(e) from e
            if woken:
                self._drain(conn)  # one read answers every notification already here
                return True
            conn = self._connection()

    def read_page_parked(self, position: int, processor: str, *,
                         types: Collection[str] | None = None,
                         limit: int = DEFAULT_PAGE_SIZE,
                         partition: tuple[int, int] | None = None,
                         ) -> tuple[Page, dict[int, int]]:
        """:meth:`PostgresStore.read_page_parked
        <esctl_lib.stores.postgres.store.PostgresStore.read_page_parked>` on this
        connection. The notifications that came before the read are taken (it answers
        them), so they never pile up in a worker that is always busy.

        A wake-up where the last read here ended caught up (what a worker that keeps up
        does all day) is :meth:`Reads.wake_up_page`: one ordered scan from the position,
        whatever the types. The position's key comes from the last row of the previous
        wake-up's scan when it ended there (else a probe finds it). An event's key never
        changes on a server (events are never updated or deleted), and it is forgotten
        with the connection (a failover or a restore is a new one). A scan that filled its
        limit with other types' events goes on with the filtered read from where it
        stopped, so a page short of ``limit`` is always one that reached the head."""
        self._caught_up = None
        conn = self._connection()
        self._drain(conn)
        caught, self._read_to = self._read_to, None
        if caught == position and partition is None and (types is None or types):
            known = self._key
            key = known[1] if known is not None and known[0] == position else None
            page, parked, end_key, full = self._reads.wake_up_page(
                position, key, processor, types=types, limit=limit)
            self._key = None if end_key is None else (page.end, end_key)
            if full and len(page.events) < limit:  # other types filled the scan: read on
                more, more_parked = self._reads.page_parked(
                    page.end, processor, types=types, limit=limit - len(page.events))
                page = Page(page.events + more.events, more.end)
                parked = {**parked, **more_parked}
        else:
            page, parked = self._reads.page_parked(position, processor, types=types,
                                                   limit=limit, partition=partition)
        if len(page.events) < limit:
            self._caught_up = self._read_to = page.end
        return page, parked

    def close(self) -> None:
        """Close the connection (a later call would open a new one)."""
        if self._pid == os.getpid():
            self._drop()
        else:
            _ORPHANED.append(self._conn)
            self._conn = None
