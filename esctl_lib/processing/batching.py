"""The transaction a batch's handlers write through: writes are queued, and in the worker
they run only at the end of the batch, in one short write transaction.

``insert``, ``upsert`` and :meth:`BatchTransaction.defer` queue their statements; runs of
the same statement go to the database as one ``executemany`` (a single pipeline on
PostgreSQL: ``stores/postgres/pipeline.py``). Order is kept. A queued statement's error
shows up when the queue is sent, so the worker re-runs a failed batch with queuing off to
blame the right event.

**Two ways to run.** ``BatchTransaction(raw)`` wraps a store transaction that is already
open (composition): every call that must run now goes through :meth:`current`, which
sends the queue first; whoever wraps it sends what is still queued before committing
(:meth:`flush`, or use it as a context manager, which flushes on a clean exit).

:meth:`BatchTransaction.outside` is what the worker uses: **no transaction is open while
the handlers run.** Every write (``insert``/``upsert``/``defer``, but also ``execute``,
``update``, ``delete``, ``executemany``, ``append``, tracker moves) is recorded, in order;
a write whose row count it would return returns -1 instead. A read with nothing recorded
runs in a short :meth:`~esctl_lib.stores.base.EventStore.read_transaction` of its own (no
write lock, no transaction id). The context manager's clean exit opens the store's write
transaction, calls ``will_append()`` first when anything recorded appends, then the call
given to :meth:`BatchTransaction.first` (the worker's tracker move), sends every recorded
write and commits: the rows, the emitted events and the tracker commit together
in a transaction that lasts as long as those statements, not as long as the handlers.

**Reading your own writes (flush on read).** A read while writes are recorded must see
them, so it opens the write transaction at that moment (``will_append()`` first when the
batch may append: a reactor), sends the recorded writes, and runs in it; the batch then
stays in that transaction until it commits, as batches always did. That is the cost: a
handler that reads back after writing holds the write lock (SQLite, memory) or a
transaction id (PostgreSQL) from that read to the end of its batch. Buffering writes and
answering reads from the buffer was not chosen: SQL reads over a buffer cannot be
answered without the database. Reads before the batch's first write stay outside.

A reactor's worker sets :attr:`BatchTransaction.on_pending_read`: when the writes
recorded are all earlier events' (the running handler has recorded none), it commits them
as a prefix of the batch (:meth:`BatchTransaction.commit_now`) and the read runs outside,
so look up → send → write, event after event, never sends with a transaction open.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from esctl_lib.events import Event
from esctl_lib.processing.tables import Params, Tables
from esctl_lib.stores.base import EventStore, Transaction

T = TypeVar("T")
#: A recorded call on the write transaction (an append, a tracker move).
_Call = Callable[[Transaction | Tables], object]
#: Each store's placeholder, and an empty instance of its transaction class (no
#: connection: it answers ``sql_variant`` from the class), from its first read transaction.
_SQL: weakref.WeakKeyDictionary[EventStore, tuple[str, Transaction]] = (
    weakref.WeakKeyDictionary())


class BatchTransaction(Tables):
    """Wraps a store transaction; see the module docstring. ``queue=False`` runs all at once."""

    def __init__(self, inner: Transaction | Tables, *, queue: bool = True) -> None:
        super().__init__(inner)
        self._queue_enabled = queue
        # Runs of the same statement [sql, [params, ...]] and recorded calls, in order.
        self._queued: list[tuple[str, list[Params]] | _Call] = []
        self._run: list[Params] = []  # the params of the last run
        self._run_sql: str | None = None
        #: True once a queued statement failed: the error may surface under a later event.
        self.flush_failed = False
        # Set by outside(): the store whose write transaction opens late.
        self._store: EventStore | None = None
        self._write: AbstractContextManager[Transaction] | None = None
        self._may_append = False
        self._appends = False
        self._relax = False
        self._outside: Transaction | Tables = inner
        self._owner: Callable[[], object] | None = None
        #: Who recorded the latest write (``owner()`` then: the event being handled);
        #: ``defer`` keeps it only while :attr:`on_pending_read` is set (its one reader),
        #: sparing a call per event in a projector's batch.
        self.last_owner: object | None = None
        #: Called by a read while writes are recorded and no write transaction is open;
        #: it may commit them (:meth:`commit_now`) and return True, so that the read runs
        #: outside after all. None, or False: the read opens the write transaction.
        self.on_pending_read: Callable[[BatchTransaction], bool] | None = None
        # Run first in the write transaction, after will_append() (the tracker's move).
        self._first: _Call | None = None

    @classmethod
    def outside(cls, store: EventStore, *, may_append: bool = False,
                owner: Callable[[], object] | None = None) -> BatchTransaction:
        """A batch with no transaction open yet (see the module docstring); use it as a
        context manager: a clean exit commits, an error rolls back.

        ``may_append``: the batch may append (a reactor), so a write transaction opened
        early (flush on read) declares it with ``will_append()`` before its first write.
        ``owner()`` names who records each write (:attr:`last_owner`).
        """
        sql = _SQL.get(store)
        if sql is None:
            with store.read_transaction() as probe:
                sql = _SQL[store] = (probe.placeholder, object.__new__(type(probe)))
        batch = cls(_Outside(store, *sql))
        batch._store = store
        batch._may_append = may_append
        batch._owner = owner
        return batch

    def first(self, call: _Call) -> None:
        """Run ``call`` first in the write transaction (after ``will_append()``, before any
        recorded write): now if it is open, else whenever it opens. The worker moves the
        tracker there, so a fenced instance fails before writing anything."""
        if self.in_write_transaction:
            call(self.current())
        else:
            self._first = call

    @property
    def in_write_transaction(self) -> bool:
        """Whether the store's write transaction is open (always, for a wrapped one)."""
        return self._store is None or self._write is not None

    # -- writes --------------------------------------------------------------------------
    def defer(self, sql: str, params: Params = ()) -> None:
        """Run a write whose row count you do not need, before the next read or the commit."""
        if self.on_pending_read is not None and self._owner is not None and self._write is None:
            self.last_owner = self._owner()  # only a prefix commit asks who wrote last
        if sql is self._run_sql or sql == self._run_sql:
            self._run.append(params)
        elif self._queue_enabled:
            self._run = [params]
            self._run_sql = sql
            self._queued.append((sql, self._run))
        else:
            self.inner.execute(sql, params)

    def _record(self, call: _Call) -> None:
        if self._owner is not None:
            self.last_owner = self._owner()
        self._run, self._run_sql = [], None
        self._queued.append(call)

    def execute(self, sql: str, params: Params = ()) -> int:
        if self.in_write_transaction:
            return self.current().execute(sql, params)
        self.defer(sql, params)
        return -1

    def executemany(self, sql: str, params: Sequence[Params]) -> None:
        if self.in_write_transaction:
            self.current().executemany(sql, params)
            return
        rows = list(params)
        if rows:
            if self._owner is not None:
                self.last_owner = self._owner()
            self._run, self._run_sql = [], None
            self._queued.append((sql, rows))

    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        """Append in this batch; outside a transaction it is recorded and the events are
        returned as given (no ids yet): they are stored when the batch commits."""
        if self.in_write_transaction:
            return self.current().append(events, expected_version=expected_version)
        batch = list(events)
        self._appends = True
        self._record(lambda tx: tx.append(batch, expected_version=expected_version))
        return batch

    def will_append(self) -> None:
        if self.in_write_transaction:
            self.current().will_append()
        else:
            self._appends = True

    def relax_durability(self) -> None:
        if self.in_write_transaction:
            self.current().relax_durability()
        else:
            self._relax = True

    def set_tracker(self, name: str, position: int) -> None:
        if self.in_write_transaction:
            self.current().set_tracker(name, position)
        else:
            self._record(lambda tx: tx.set_tracker(name, position))

    def advance_tracker(self, name: str, expected: int, position: int) -> None:
        if self.in_write_transaction:
            self.current().advance_tracker(name, expected, position)
        else:
            self._record(lambda tx: tx.advance_tracker(name, expected, position))

    def reset_tracker(self, name: str, position: int = 0) -> None:
        if self.in_write_transaction:
            self.current().reset_tracker(name, position)
        else:
            self._record(lambda tx: tx.reset_tracker(name, position))

    # -- reads ---------------------------------------------------------------------------
    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        if self._reads_inside():
            return self.current().fetchall(sql, params)
        with self._read() as tx:
            return tx.fetchall(sql, params)

    def fetch_dicts(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        if self._reads_inside():
            return self.current().fetch_dicts(sql, params)
        with self._read() as tx:
            return tx.fetch_dicts(sql, params)

    def get_tracker(self, name: str) -> int:
        if self._reads_inside():
            return self.current().get_tracker(name)
        with self._read() as tx:
            return tx.get_tracker(name)

    def sql_variant(self, variants: Mapping[str, T]) -> T | None:
        return self.inner.sql_variant(variants)

    def _reads_inside(self) -> bool:
        """Whether a read must run in the write transaction: it is open, or writes are
        recorded (flush on read) and :attr:`on_pending_read` did not commit them."""
        if self.in_write_transaction:
            return True
        if not self._queued:
            return False
        hook = self.on_pending_read
        if hook is not None and hook(self):
            return bool(self._queued) or self.in_write_transaction
        return True

    def _read(self) -> AbstractContextManager[Transaction]:
        assert self._store is not None
        return self._store.read_transaction()

    # -- the write transaction -----------------------------------------------------------
    def __enter__(self) -> BatchTransaction:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if self._store is None:
            if exc is None:
                self.flush()
            return
        if exc is None:
            try:
                self.current()  # opens the write transaction and sends the queue
            except BaseException as e:
                self._close(type(e), e, e.__traceback__)
                raise
            self._close(None, None, None)
        else:
            self._close(kind, exc, tb)

    def commit_now(self, finish: Callable[[BatchTransaction], None], *,
                   first: _Call | None = None, appends: bool = False) -> None:
        """Commit what is recorded now, with what ``finish(self)`` writes in the same write
        transaction (``appends``: it appends), ``first`` run first instead of the one
        given to :meth:`first`; the batch then carries on outside again."""
        assert self._store is not None and self._write is None
        self._appends = self._appends or appends
        try:
            try:
                self._open(first)
                self.flush()
                finish(self)
                self.flush()
            except BaseException as e:
                self._close(type(e), e, e.__traceback__)
                raise
            self._close(None, None, None)
        finally:
            self._write = None
            self.inner = self._outside
            self._queued, self._run, self._run_sql = [], [], None
            self._appends = False
            self.last_owner = None

    def _close(self, kind: type[BaseException] | None, exc: BaseException | None,
               tb: Any) -> None:
        write, self._write = self._write, None
        if write is not None:
            write.__exit__(kind, exc, tb)  # commits, or rolls back

    def _open(self, first: _Call | None = None) -> Transaction:
        """Open the store's write transaction: ``will_append()`` before anything else, then
        the ``first`` call."""
        assert self._store is not None and self._write is None
        write = self._store.transaction()
        raw = write.__enter__()
        self._write = write
        try:
            if self._appends or self._may_append:
                raw.will_append()
            if self._relax:
                raw.relax_durability()
            call = first or self._first
            if call is not None:
                call(raw)
        except BaseException as e:
            self._close(type(e), e, e.__traceback__)
            raise
        self.inner = raw
        return raw

    def current(self) -> Transaction | Tables:
        """The store's transaction (opened now when it is not yet: flush on read), after
        sending every queued write."""
        if self._store is not None and self._write is None:
            self._open()
        if self._queued:
            self.flush()
        return self.inner

    def flush(self) -> None:
        """Send every queued statement, grouping runs of the same SQL into one executemany."""
        queued, self._queued = self._queued, []
        self._run, self._run_sql = [], None
        inner = self.inner
        try:
            for item in queued:
                if callable(item):
                    item(inner)
                    continue
                sql, params = item
                if len(params) == 1:
                    inner.execute(sql, params[0])
                else:
                    inner.executemany(sql, params)
        except BaseException:
            self.flush_failed = True
            raise


class _Outside(Transaction):
    """Stands in for the write transaction while none is open: the batch intercepts every
    call, so reaching one of these is a bug."""

    def __init__(self, store: EventStore, placeholder: str, like: Transaction) -> None:
        self.store = store
        self.placeholder = placeholder
        self._like = like

    def sql_variant(self, variants: Mapping[str, T]) -> T | None:
        return self._like.sql_variant(variants)

    def _closed(self) -> Any:
        raise AssertionError("no write transaction is open")  # pragma: no cover

    def execute(self, sql: str, params: Params = ()) -> int:
        return int(self._closed())

    def executemany(self, sql: str, params: Sequence[Params]) -> None:
        self._closed()

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self._closed())

    def fetch_dicts(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        return list(self._closed())

    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        return list(self._closed())

    def get_tracker(self, name: str) -> int:
        return int(self._closed())

    def set_tracker(self, name: str, position: int) -> None:
        self._closed()

    def advance_tracker(self, name: str, expected: int, position: int) -> None:
        self._closed()

    def reset_tracker(self, name: str, position: int = 0) -> None:
        self._closed()
