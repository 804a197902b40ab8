"""Processor locks on PostgreSQL: session-level advisory locks on a dedicated connection.

The key is a stable 64-bit hash of (schema, processor name), so every runner on every host
that shares one database agrees on it. The lock lives as long as the connection's session:
when the process holding it dies, the server ends the session and the lock goes with it
(TCP keepalives make a vanished host's session end within about half a minute).
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import psycopg

from esctl_lib.errors import StoreUnavailableError
from esctl_lib.stores.dsn import dsn_secrets
from esctl_lib.stores.locks import ProcessorLock, describe_self
from esctl_lib.stores.postgres.errors import lock_connect_error, lock_query_error

_KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}
_HOLDER_SQL = (
    "SELECT a.application_name, l.pid FROM pg_locks l "
    "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid::bigint = %s AND l.objid::bigint = %s LIMIT 1"
)


def lock_key(*parts: str) -> int:
    """The signed 64-bit advisory-lock key of one of esctl's locks, named by ``parts``
    (a hash of ``esctl.`` and the parts joined by NUL)."""
    text = ("esctl." + "\0".join(parts)).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big", signed=True)


def advisory_key(schema: str | None, name: str) -> int:
    """A signed 64-bit advisory-lock key for processor ``name`` in ``schema``."""
    return lock_key("processor", schema or "public", name)


class PostgresAdvisoryLock(ProcessorLock):
    """``pg_try_advisory_lock`` held on a connection this lock owns."""

    def __init__(self, url: str, schema: str | None, name: str, *,
                 display_url: str = "the database", connect_timeout: float = 10.0) -> None:
        super().__init__(name)
        self.url = url
        self.schema = schema
        self.display_url = display_url
        self.connect_timeout = connect_timeout
        self.key = advisory_key(schema, name)
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            app = f"esctl lock {self.name} {describe_self()}"[:63]
            try:
                self._conn = psycopg.connect(
                    self.url, autocommit=True, application_name=app,
                    connect_timeout=max(1, int(self.connect_timeout)), **_KEEPALIVES,
                )
            except psycopg.Error as e:
                raise lock_connect_error(e, self.display_url, self.name,
                                         dsn_secrets(self.url)) from e
        return self._conn

    def _query(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        conn = self._connection()
        try:
            return conn.execute(sql, params).fetchone()
        except psycopg.Error as e:
            self._drop_connection()
            raise lock_query_error(e, self.name) from e

    def try_acquire(self) -> bool:
        if self.held:
            return True
        row = self._query("SELECT pg_try_advisory_lock(%s)", (self.key,))
        self.held = bool(row and row[0])
        return self.held

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        with contextlib.suppress(StoreUnavailableError):  # a dead session has dropped it
            self._query("SELECT pg_advisory_unlock(%s)", (self.key,))

    def holder(self) -> str | None:
        if self.held:
            return describe_self()
        high, low = (self.key >> 32) & 0xFFFFFFFF, self.key & 0xFFFFFFFF
        row = self._query(_HOLDER_SQL, (high, low))
        if row is None:
            return None
        app, pid = row
        if isinstance(app, str) and app.startswith(f"esctl lock {self.name} "):
            return app[len(f"esctl lock {self.name} "):]
        return f"PostgreSQL backend pid {pid}"

    def check(self) -> bool:
        """Whether the lock's session is still alive (a dead session has lost the lock)."""
        if not self.held:
            return False
        try:
            self._query("SELECT 1", ())
        except StoreUnavailableError:
            self.held = False
        return self.held

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()
        self.held = False

    def close(self) -> None:
        self.release()
        self._drop_connection()
