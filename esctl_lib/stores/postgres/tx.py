"""PostgreSQL transactions: ``BEGIN`` … ``COMMIT`` on one pooled connection.

Every statement uses unqualified table names: each pooled connection has its
``search_path`` set to the store's schema. Anything composed from identifiers goes
through :mod:`psycopg.sql`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row

from esctl_lib.errors import TrackerError
from esctl_lib.events import Event
from esctl_lib.stores.base import Snapshot
from esctl_lib.stores.postgres import snapshots
from esctl_lib.stores.postgres.append import append
from esctl_lib.stores.postgres.errors import translate_errors
from esctl_lib.stores.postgres.horizon import schema_lock_key, take_lock
from esctl_lib.stores.postgres.pipeline import execute_many
from esctl_lib.stores.postgres.pool import cursor
from esctl_lib.stores.postgres.stream import key_of
from esctl_lib.stores.sql import SqlTrackers

if TYPE_CHECKING:
    from esctl_lib.stores.postgres.store import PostgresStore

# Moves a tracker forward in stream order; the row is locked by ON CONFLICT.
SET_TRACKER = f"""
INSERT INTO trackers AS t (name, position, updated_at) VALUES (%(n)s, %(p)s, %(u)s)
ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
WHERE t.position = excluded.position
   OR (coalesce((SELECT k.tx FROM events k WHERE k.id <= t.position ORDER BY k.id DESC LIMIT 1),
                '0'::xid8),
       coalesce((SELECT k.id FROM events k WHERE k.id <= t.position ORDER BY k.id DESC LIMIT 1),
                0))
      <= {key_of("p")}
"""



class PostgresTransaction(SqlTrackers):
    """A transaction on one pooled connection (``BEGIN`` … ``COMMIT``)."""

    dialect = "postgresql"
    placeholder = "%s"

    def __init__(self, store: PostgresStore, conn: psycopg.Connection[Any]) -> None:
        self._store = store
        self._conn = conn
        #: The greatest event id this transaction appended (0 when none).
        self.last_id = 0
        #: True once this transaction holds the store's append lock.
        self.appending = False

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> int:
        with translate_errors():
            return cursor(self._conn).execute(sql, params or None).rowcount

    def executemany(self, sql: str, params: Sequence[Sequence[Any] | Mapping[str, Any]]) -> None:
        with translate_errors():
            execute_many(self._conn, sql, params)

    def fetchall(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        with translate_errors():
            return cursor(self._conn).execute(sql, params or None).fetchall()

    def fetch_dicts(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[dict[str, Any]]:
        with translate_errors():
            cur = self._conn.cursor(row_factory=dict_row)
            return cur.execute(sql, params or None).fetchall()

    def relax_durability(self) -> None:
        """Commit without waiting for the WAL flush (``synchronous_commit`` off for this
        transaction only): a server crash can lose it whole, never half of it."""
        self.execute("SET LOCAL synchronous_commit TO OFF")

    def lock_schema_changes(self) -> None:
        """The store's schema-change lock, held until this transaction ends."""
        self.execute("SELECT pg_advisory_xact_lock(%s)", (schema_lock_key(self._store.schema),))

    def will_append(self) -> None:
        """Take the store's append lock (once), which this transaction must do before it has
        a transaction id, i.e. before its first write: else raises :class:`StoreError`
        (see ``horizon.py``: readers then know it may still insert events)."""
        if self.appending:
            return
        with translate_errors():
            take_lock(self._conn, self._store.append_key)
        self.appending = True

    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        self.will_append()
        stored = append(self._store, self._conn, events, expected_version, in_transaction=True)
        last = stored[-1].id
        if last is not None and last > self.last_id:
            self.last_id = last
        return stored

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` in this transaction, in a savepoint (``postgres/snapshots.py``)."""
        snapshots.save_in(self._conn, snapshot)

    def set_tracker(self, name: str, position: int) -> None:
        """Move a tracker forward in stream order (which is not id order on PostgreSQL)."""
        changed = self.execute(SET_TRACKER, {"n": name, "p": position, "u": time.time()})
        if changed == 0:
            raise TrackerError(
                f"tracker {name!r} is past position {position}; reset it to move it back"
            )
