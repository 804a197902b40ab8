"""The PostgreSQL store's connections: a ``psycopg_pool.ConnectionPool`` with a fast front.

The pool opens, configures, replaces and closes connections. Between calls, up to
``keep`` idle connections wait in a small LIFO in front of it, so that the common case
(one statement on an idle connection) costs a deque pop and push rather than a trip through
the pool's locks and bookkeeping. A connection goes back through the pool whenever it is
not cleanly idle, and the LIFO is emptied into the pool when a connection is found lost.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from esctl_lib.errors import StoreUnavailableError
from esctl_lib.stores.postgres.errors import translate_errors

log = logging.getLogger("esctl.postgresql")
_IDLE = TransactionStatus.IDLE


class Connections:
    """Checkouts for one store in one process (see the module docstring)."""

    def __init__(self, pool: ConnectionPool[psycopg.Connection[Any]], *, keep: int) -> None:
        self.pool = pool
        self.keep = keep
        self._idle: deque[psycopg.Connection[Any]] = deque()
        self._closed = False

    def take(self) -> psycopg.Connection[Any]:
        """An idle connection: from the LIFO, else from the pool."""
        try:
            return self._idle.pop()
        except IndexError:
            with translate_errors():
                return self.pool.getconn()

    def give(self, conn: psycopg.Connection[Any]) -> None:
        """Take a connection back after use."""
        if (not self._closed and len(self._idle) < self.keep
                and conn.pgconn.transaction_status == _IDLE):
            self._idle.append(conn)
        else:
            self.pool.putconn(conn)

    def lost(self) -> None:
        """A connection was found dead: check every idle one before the next call."""
        self._drain()
        try:
            self.pool.check()
        except Exception as e:  # the server may be down altogether: the next call says so
            log.info("esctl pool check failed: %s", e)

    def close(self) -> None:
        """Return the idle connections and close the pool."""
        self._closed = True
        self._drain()
        self.pool.close()

    def _drain(self) -> None:
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                return
            self.pool.putconn(conn)


class Checkout:
    """Holds one connection for a ``with`` block."""

    __slots__ = ("conn", "owner")

    def __init__(self, owner: Connections) -> None:
        self.owner = owner

    def __enter__(self) -> psycopg.Connection[Any]:
        self.conn = self.owner.take()
        return self.conn

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        self.owner.give(self.conn)
        if isinstance(exc, StoreUnavailableError):
            self.owner.lost()


def cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
    """The connection's reusable cursor (cheaper than a new cursor per statement)."""
    cur: psycopg.Cursor[Any] | None = getattr(conn, "_esctl_cursor", None)
    if cur is None or cur.closed:
        cur = conn.cursor()
        conn._esctl_cursor = cur  # type: ignore[attr-defined]
    return cur
