"""The transaction a batch's handlers write through: writes that return nothing are queued.

``insert``, ``upsert`` and :meth:`BatchTransaction.defer` queue their statements; runs of
the same statement go to the database as one ``executemany`` (a single pipeline on
PostgreSQL: ``stores/postgres/pipeline.py``) just before the next read, the next statement
that must return a row count, or the commit. Order is kept. A queued statement's error
shows up at that flush, so the worker re-runs a failed batch with queuing off to blame the
right event.

It wraps the store's transaction (composition): every call that must run now goes through
:meth:`current`, which sends the queue first. Whoever wraps a transaction sends what is
still queued before it commits: :meth:`BatchTransaction.flush`, or use it as a context
manager (``with BatchTransaction(raw) as tx:``), which flushes on a clean exit.
"""

from __future__ import annotations

from esctl_lib.processing.tables import Params, Tables
from esctl_lib.stores.base import Transaction


class BatchTransaction(Tables):
    """Wraps a store transaction; see the module docstring. ``queue=False`` runs all at once."""

    def __init__(self, inner: Transaction | Tables, *, queue: bool = True) -> None:
        super().__init__(inner)
        self._queue_enabled = queue
        # Runs of the same statement: [sql, [params, ...]], in the order they were queued.
        self._queued: list[tuple[str, list[Params]]] = []
        self._run: list[Params] = []  # the params of the last run
        self._run_sql: str | None = None
        #: True once a queued statement failed: the error may surface under a later event.
        self.flush_failed = False

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

    def __enter__(self) -> BatchTransaction:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if exc is None:
            self.flush()

    def current(self) -> Transaction | Tables:
        """The store's transaction, after sending every queued write."""
        if self._queued:
            self.flush()
        return self.inner

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
