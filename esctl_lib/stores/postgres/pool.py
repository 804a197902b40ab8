"""The PostgreSQL store's connections: a ``psycopg_pool.ConnectionPool`` with a fast front.

The pool opens, configures, replaces and closes connections. Between calls, up to
``keep`` idle connections wait in a small LIFO in front of it, so that the common case
(one statement on an idle connection) costs a deque pop and push rather than a trip through
the pool's locks and bookkeeping. A connection goes back through the pool whenever it is
not cleanly idle, and the LIFO is emptied into the pool when a connection is found lost.

**Failing fast, with the cause.** The pool connects in background threads and, when it
cannot, only says "couldn't get a connection after N sec" once its timeout has passed. So
when the pool has failed to connect, or has not given a connection within
``_PATIENCE`` seconds, :meth:`Connections.take` connects directly to learn why: a cause no
retry can fix (authentication, an unknown database or role, a bad option) is raised at
once as a :class:`ConfigError`; a transient one (refused, unknown host, timeout) is retried
until ``connect_timeout`` has passed, then raised as a :class:`StoreUnavailableError`
naming it. A direct connection that succeeds serves the caller (the pool may still be
waiting out its reconnection backoff after a server restart) and is kept in the LIFO for
reuse; it is closed, not handed to the pool, when the LIFO is emptied. The pool's own
warnings about failed attempts are logged at debug level only: the outcome is reported
once, by the error.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from esctl_lib.errors import ConfigError, StoreUnavailableError
from esctl_lib.stores.postgres.errors import DRIVER_ERRORS, connect_error, translate

log = logging.getLogger("esctl.postgresql")
_IDLE = TransactionStatus.IDLE
#: How long a checkout waits on the pool before connecting directly to learn why it waits.
_PATIENCE = 0.5
#: One wait on the pool, between looks at whether it has failed to connect.
_SLICE = 0.05
#: Pause between direct attempts while a transient cause lasts.
_RETRY_PAUSE = 0.25
#: How long closing waits for each of the pool's threads.
_CLOSE_WAIT = 0.2
#: Connects directly, given a timeout in seconds; returns a configured connection.
Connect = Callable[[float], "psycopg.Connection[Any]"]


class _QuietPoolWarnings(logging.Filter):
    """Logs psycopg_pool's records at debug level (a failed attempt is reported once, by
    the error the caller gets), so no handler above debug shows them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_QUIET = _QuietPoolWarnings()


def quiet_pool_warnings() -> None:
    """Install the filter on psycopg_pool's logger (once; called when a pool opens)."""
    logger = logging.getLogger("psycopg.pool")
    if _QUIET not in logger.filters:
        logger.addFilter(_QUIET)


class Connections:
    """Checkouts for one store in one process (see the module docstring)."""

    def __init__(self, pool: ConnectionPool[psycopg.Connection[Any]], *, keep: int,
                 connect: Connect | None = None, timeout: float = 10.0,
                 where: str = "the server", secrets: tuple[str, ...] = ()) -> None:
        self.pool = pool
        self.keep = keep
        self.connect = connect
        self.timeout = timeout
        self.where = where
        self.secrets = secrets
        self._idle: deque[psycopg.Connection[Any]] = deque()
        self._closed = False

    def take(self) -> psycopg.Connection[Any]:
        """An idle connection: from the LIFO, else from the pool (see the module docstring)."""
        try:
            return self._idle.pop()
        except IndexError:
            pass
        deadline = time.monotonic() + self.timeout
        patience = time.monotonic() + min(_PATIENCE, self.timeout)
        errors = self._connection_errors()
        try:
            while True:
                with contextlib.suppress(PoolTimeout):
                    return self.pool.getconn(timeout=_SLICE)
                now = time.monotonic()
                if self.connect is None:
                    if now >= deadline:
                        raise StoreUnavailableError(
                            f"cannot connect to PostgreSQL at {self.where}: no connection "
                            f"within {self.timeout:g} s")
                elif now >= patience or self._connection_errors() > errors:
                    return self._direct(deadline)
        except DRIVER_ERRORS as e:
            raise translate(e) from e

    def _connection_errors(self) -> int:
        return int(self.pool.get_stats().get("connections_errors", 0))

    def _direct(self, deadline: float) -> psycopg.Connection[Any]:
        """Connect directly: the pool cannot give a connection, and this says why."""
        assert self.connect is not None
        while True:
            remaining = deadline - time.monotonic()
            try:
                conn = self.connect(max(1.0, remaining))
            except DRIVER_ERRORS as e:
                error = connect_error(e, self.where, self.secrets)
                log.debug("esctl direct connection failed: %s", error)
                if isinstance(error, ConfigError) or time.monotonic() + _RETRY_PAUSE >= deadline:
                    raise error from None
                time.sleep(_RETRY_PAUSE)
                continue
            conn._esctl_direct = True  # type: ignore[attr-defined]
            return conn

    def give(self, conn: psycopg.Connection[Any]) -> None:
        """Take a connection back after use."""
        if (not self._closed and len(self._idle) < self.keep
                and conn.pgconn.transaction_status == _IDLE):
            self._idle.append(conn)
        else:
            self._release(conn)

    def _release(self, conn: psycopg.Connection[Any]) -> None:
        if getattr(conn, "_esctl_direct", False):
            with contextlib.suppress(*DRIVER_ERRORS):
                conn.close()
        else:
            self.pool.putconn(conn)

    def lost(self) -> None:
        """A connection was found dead: check every idle one before the next call."""
        self._drain()
        try:
            self.pool.check()
        except Exception as e:  # the server may be down altogether: the next call says so
            log.debug("esctl pool check failed: %s", e)

    def close(self) -> None:
        """Return the idle connections and close the pool."""
        self._closed = True
        self._drain()
        # Idle workers stop at once; one still waiting on a connection attempt (a server
        # that does not answer) is not waited for, so that Ctrl-C and close are prompt.
        self.pool.close(timeout=_CLOSE_WAIT)

    def _drain(self) -> None:
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                return
            self._release(conn)


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
