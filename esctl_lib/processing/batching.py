"""The transaction a batch's handlers write through: writes that return nothing are queued.

``insert``, ``insert_many``, ``upsert`` and :meth:`BatchTransaction.defer` queue their
statements; runs of the same statement go to the database as one ``executemany`` (a
single pipeline on PostgreSQL: ``stores/postgres_pipeline.py``) just before the next read,
the next statement that must return a row count, or the commit. Order is kept. A queued
statement's error shows up at that flush, so the worker re-runs a failed batch with
queuing off to blame the right event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from esctl_lib.events import Event
from esctl_lib.stores.base import Transaction

Params = Sequence[Any] | Mapping[str, Any]


class BatchTransaction(Transaction):
    """Wraps a store transaction; see the module docstring. ``queue=False`` runs all at once."""

    def __init__(self, inner: Transaction, *, queue: bool = True) -> None:
        self.inner = inner
        self.dialect = inner.dialect
        self.placeholder = inner.placeholder
        self._queue_enabled = queue
        self._capture = False
        # Runs of the same statement: [sql, [params, ...]], in the order they were queued.
        self._queued: list[tuple[str, list[Params]]] = []
        self._run: list[Params] = []  # the params of the last run
        self._run_sql: str | None = None
        #: True once a queued statement failed: the error may surface under a later event.
        self.flush_failed = False

    # -- queued writes -------------------------------------------------------------------
    def defer(self, sql: str, params: Params = ()) -> None:
        """Run a write whose row count you do not need, before the next read or the commit."""
        if sql is self._run_sql or sql == self._run_sql:
            self._run.append(params)
        elif self._queue_enabled:
            self._run = [params]
            self._run_sql = sql
            self._queued.append((sql, self._run))
        else:
            self.inner.execute(sql, params)

    def insert(self, table: str, values: Mapping[str, Any]) -> None:
        self._capture = True
        try:
            super().insert(table, values)
        finally:
            self._capture = False

    def insert_many(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self.flush()
        self.inner.insert_many(table, rows)

    def upsert(
        self,
        table: str,
        values: Mapping[str, Any],
        *,
        key: Sequence[str],
        update: Sequence[str] | None = None,
    ) -> None:
        self._capture = True
        try:
            super().upsert(table, values, key=key, update=update)
        finally:
            self._capture = False

    def flush(self) -> None:
        """Send every queued statement, grouping runs of the same SQL into one executemany."""
        queued, self._queued = self._queued, []
        self._run, self._run_sql = [], None
        try:
            for sql, params in queued:
                if len(params) == 1:
                    self.inner.execute(sql, params[0])
                else:
                    self.inner.executemany(sql, params)
        except BaseException:
            self.flush_failed = True
            raise

    # -- everything else flushes first ----------------------------------------------------
    def execute(self, sql: str, params: Params = ()) -> int:
        if self._capture:
            self.defer(sql, params)
            return -1
        self.flush()
        return self.inner.execute(sql, params)

    def executemany(self, sql: str, params: Sequence[Params]) -> None:
        self.flush()
        self.inner.executemany(sql, params)

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        self.flush()
        return self.inner.fetchall(sql, params)

    def _fetch_dicts(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        self.flush()
        return self.inner._fetch_dicts(sql, params)

    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        self.flush()
        return self.inner.append(events, expected_version=expected_version)

    def get_tracker(self, name: str) -> int:
        self.flush()
        return self.inner.get_tracker(name)

    def set_tracker(self, name: str, position: int) -> None:
        self.flush()
        self.inner.set_tracker(name, position)

    def advance_tracker(self, name: str, expected: int, position: int) -> None:
        self.flush()
        self.inner.advance_tracker(name, expected, position)

    def reset_tracker(self, name: str, position: int = 0) -> None:
        self.flush()
        self.inner.reset_tracker(name, position)
