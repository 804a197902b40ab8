"""Portable table helpers for projectors, over the store's transaction contract.

A :class:`Tables` wraps one :class:`~esctl_lib.stores.base.Transaction` and adds
``insert``, ``insert_many``, ``upsert``, ``update``, ``delete``, ``select`` and ``defer``,
written once in portable SQL over ``execute``/``executemany``/``fetch_dicts`` and the
backend's :attr:`~Transaction.placeholder`. Everything else (raw SQL, appends, trackers)
goes straight to the wrapped transaction. Handlers get one (a
:class:`~esctl_lib.processing.batching.BatchTransaction`) as their ``tx``; elsewhere open
one with :func:`open_tables` (or wrap a transaction you have: ``Tables(tx)``)::

    with open_tables(store) as tx:
        rows = tx.select("outstanding_todos", order_by=("title",))

Table and column names are validated and quoted; values are always bound.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from esctl_lib.events import Event
from esctl_lib.stores.base import EventStore, Snapshot, Transaction, quote_identifier

Params = Sequence[Any] | Mapping[str, Any]
T = TypeVar("T")


class Tables:
    """A store transaction with portable table helpers (see the module docstring)."""

    def __init__(self, tx: Transaction | Tables) -> None:
        #: The transaction underneath: the store's (or another Tables, whose queued
        #: writes then keep their order).
        self.inner: Transaction | Tables = tx
        #: The backend's parameter style: ``?`` (SQLite) or ``%s`` (PostgreSQL).
        self.placeholder: str = tx.placeholder

    def current(self) -> Transaction | Tables:
        """The store's transaction, ready for a statement that must run now (a batch sends
        its queued writes first)."""
        return self.inner

    # -- the store's transaction -----------------------------------------------------------
    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed (or -1)."""
        return self.current().execute(sql, params)

    def executemany(self, sql: str, params: Sequence[Params]) -> None:
        """Run one statement for each parameter set."""
        self.current().executemany(sql, params)

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Run a query and return every row as a tuple."""
        return self.current().fetchall(sql, params)

    def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        """Run a query and return its first row, or None."""
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def fetch_dicts(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Run a query and return every row as a dict keyed by column name."""
        return self.current().fetch_dicts(sql, params)

    def sql_variant(self, variants: Mapping[str, T]) -> T | None:
        """See :meth:`Transaction.sql_variant`."""
        return self.inner.sql_variant(variants)

    def relax_durability(self) -> None:
        """See :meth:`Transaction.relax_durability`."""
        self.current().relax_durability()

    def will_append(self) -> None:
        """See :meth:`Transaction.will_append`."""
        self.current().will_append()

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """See :meth:`Transaction.save_snapshot`."""
        self.current().save_snapshot(snapshot)

    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        """Append events of one aggregate in this transaction (see ``EventStore.append``)."""
        return self.current().append(events, expected_version=expected_version)

    def get_tracker(self, name: str) -> int:
        """The tracker's position, 0 when it has none."""
        return self.current().get_tracker(name)

    def set_tracker(self, name: str, position: int) -> None:
        """Move a tracker forward (see ``Transaction.set_tracker``)."""
        self.current().set_tracker(name, position)

    def advance_tracker(self, name: str, expected: int, position: int) -> None:
        """Move a tracker by compare-and-set (see ``Transaction.advance_tracker``)."""
        self.current().advance_tracker(name, expected, position)

    def reset_tracker(self, name: str, position: int = 0) -> None:
        """Put a tracker at ``position``, forwards or backwards."""
        self.current().reset_tracker(name, position)

    # -- table helpers -------------------------------------------------------------------
    def defer(self, sql: str, params: Params = ()) -> None:
        """Run a write whose row count you do not need (a batch queues it; see batching)."""
        self.execute(sql, params)

    def insert(self, table: str, values: Mapping[str, Any]) -> None:
        """INSERT one row."""
        self.defer(insert_sql(table, values, self.placeholder), tuple(values.values()))

    def insert_many(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """INSERT many rows that share the same columns."""
        if not rows:
            return
        names = list(rows[0])
        self.executemany(insert_sql(table, names, self.placeholder),
                         [tuple(row[c] for c in names) for row in rows])

    def upsert(
        self,
        table: str,
        values: Mapping[str, Any],
        *,
        key: Sequence[str],
        update: Sequence[str] | None = None,
    ) -> None:
        """INSERT a row, or UPDATE the columns in ``update`` (default: all but the key)."""
        to_update = [c for c in values if c not in key] if update is None else list(update)
        if to_update:
            sets = ", ".join(
                f"{quote_identifier(c)} = excluded.{quote_identifier(c)}" for c in to_update
            )
            action = f"DO UPDATE SET {sets}"
        else:
            action = "DO NOTHING"
        keys = ", ".join(quote_identifier(c) for c in key)
        self.defer(f"{insert_sql(table, values, self.placeholder)} ON CONFLICT ({keys}) {action}",
                   tuple(values.values()))

    def update(self, table: str, values: Mapping[str, Any], *, where: Mapping[str, Any]) -> int:
        """UPDATE rows matching every ``where`` column; returns how many changed."""
        sets = ", ".join(f"{quote_identifier(c)} = {self.placeholder}" for c in values)
        cond, params = where_sql(where, self.placeholder)
        return self.execute(f"UPDATE {quote_identifier(table)} SET {sets}{cond}",
                            (*values.values(), *params))

    def delete(self, table: str, *, where: Mapping[str, Any]) -> int:
        """DELETE rows matching every ``where`` column; returns how many went."""
        cond, params = where_sql(where, self.placeholder)
        return self.execute(f"DELETE FROM {quote_identifier(table)}{cond}", params)

    def select(
        self,
        table: str,
        *,
        where: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        order_by: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """SELECT rows as dicts. ``order_by`` names columns; prefix one with ``-`` for DESC."""
        names = list(columns) if columns else None
        cols = ", ".join(quote_identifier(c) for c in names) if names else "*"
        cond, params = where_sql(where or {}, self.placeholder)
        order = ""
        if order_by:
            parts = [
                f"{quote_identifier(c[1:])} DESC" if c.startswith("-") else quote_identifier(c)
                for c in order_by
            ]
            order = " ORDER BY " + ", ".join(parts)
        lim = f" LIMIT {int(limit)}" if limit is not None else ""
        return self.fetch_dicts(
            f"SELECT {cols} FROM {quote_identifier(table)}{cond}{order}{lim}", params
        )


def insert_sql(table: str, columns: Sequence[str] | Mapping[str, Any], placeholder: str) -> str:
    """``INSERT INTO "table" ("a", "b") VALUES (?, ?)`` in the backend's parameter style."""
    cols = ", ".join(quote_identifier(c) for c in columns)
    marks = ", ".join(placeholder for _ in columns)
    return f"INSERT INTO {quote_identifier(table)} ({cols}) VALUES ({marks})"


def where_sql(where: Mapping[str, Any], placeholder: str) -> tuple[str, tuple[Any, ...]]:
    """`` WHERE "a" = ? AND "b" IS NULL`` and its parameters ('' and () for no conditions)."""
    if not where:
        return "", ()
    parts = []
    params: list[Any] = []
    for col, value in where.items():
        if value is None:
            parts.append(f"{quote_identifier(col)} IS NULL")
        else:
            parts.append(f"{quote_identifier(col)} = {placeholder}")
            params.append(value)
    return " WHERE " + " AND ".join(parts), tuple(params)


def as_tables(tx: Transaction | Tables) -> Tables:
    """``tx`` itself when it already has the helpers, else ``Tables(tx)``."""
    return tx if isinstance(tx, Tables) else Tables(tx)


@contextmanager
def open_tables(store: EventStore) -> Iterator[Tables]:
    """``store.transaction()`` with the table helpers: for queries on read models.

    ::

        with open_tables(store) as tx:
            rows = tx.select("outstanding_todos", order_by=("title",))
    """
    with store.transaction() as tx:
        yield Tables(tx)
