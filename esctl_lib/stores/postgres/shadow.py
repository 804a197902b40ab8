"""Shadow tables on PostgreSQL: the declared names, in a schema of their own.

The redirected transaction puts the shadow schema first on its ``search_path``
(``set_config(..., is_local => true)``, so the pooled connection is back to normal after
it), so unqualified names (what projectors write) create, fill and read the shadow tables,
while everything else (events, trackers, other tables) still resolves to the store's
schema. The swap takes the live tables' locks (waiting at most ``LOCK_TIMEOUT``, so that
it never deadlocks a batch of the live processor: it gives up and tries again instead),
drops them and moves the shadow tables into the store's schema with
``ALTER TABLE ... SET SCHEMA``, which carries their indexes, constraints and owned
sequences under their own names. It drops nothing with CASCADE in the store's schema: a
view on a live table makes the swap fail, and the live tables stay.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from esctl_lib.stores.base import Transaction
from esctl_lib.stores.postgres.errors import DRIVER_ERRORS, translate, translate_errors
from esctl_lib.stores.shadow import TableShadow

if TYPE_CHECKING:
    from esctl_lib.stores.postgres.tx import PostgresTransaction

#: How long the swap waits for the live tables' locks before it tries again later.
LOCK_TIMEOUT = "500ms"


def shadow_schema(schema: str, key: str) -> str:
    """The shadow schema of processor ``key`` in store schema ``schema`` (<= 63 bytes)."""
    name = f"{schema}__rebuild_{key}"
    if len(name.encode()) > 63:
        digest = hashlib.sha1(name.encode()).hexdigest()[:12]
        name = f"{schema[:30]}__rebuild_{digest}"
    return name


class SchemaShadow(TableShadow):
    """Shadow tables in their own schema (see the module docstring)."""

    def __init__(self, schema: str, key: str, tables: Sequence[str]) -> None:
        super().__init__(key, tables)
        self.schema = schema
        self.shadow = shadow_schema(schema, key)

    def _conn(self, tx: Transaction) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] = getattr(tx, "_conn")  # noqa: B009
        return conn

    def _run(self, tx: Transaction, statement: sql.Composed) -> None:
        conn = self._conn(tx)
        with translate_errors():
            conn.execute(statement)

    def _search_path(self, tx: Transaction, *schemas: str) -> None:
        conn = self._conn(tx)
        path = sql.SQL(", ").join(sql.Identifier(s) for s in schemas).as_string(conn)
        with translate_errors():
            conn.execute("SELECT set_config('search_path', %s, true)", (path,))

    def prepare(self, tx: Transaction) -> None:
        self.discard(tx)
        self._run(tx, sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.shadow)))

    def redirect(self, tx: Transaction) -> Transaction:
        self._search_path(tx, self.shadow, self.schema)
        return tx

    def swap_in(self, tx: Transaction) -> bool:
        self._search_path(tx, self.schema)
        conn = self._conn(tx)
        live = self._live_tables(tx)
        try:
            with conn.transaction():  # a savepoint: a lock that cannot be had undoes only it
                conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                if live:
                    conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                        sql.SQL(", ").join(sql.Identifier(self.schema, t) for t in live)))
        except pg_errors.LockNotAvailable:
            return False
        except DRIVER_ERRORS as e:
            raise translate(e) from e
        with translate_errors():
            conn.execute("SET LOCAL lock_timeout TO DEFAULT")
            if live:
                conn.execute(sql.SQL("DROP TABLE {}").format(
                    sql.SQL(", ").join(sql.Identifier(self.schema, t) for t in live)))
            for table in self.tables:
                conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                    sql.Identifier(self.shadow, table), sql.Identifier(self.schema)))
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(self.shadow)))
        return True

    def _live_tables(self, tx: Transaction) -> list[str]:
        ptx: PostgresTransaction = tx  # type: ignore[assignment]
        rows = ptx.fetchall(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p')",
            (self.schema, list(self.tables)),
        )
        found = {str(r[0]) for r in rows}
        return [t for t in self.tables if t in found]

    def discard(self, tx: Transaction) -> None:
        self._run(tx, sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
            sql.Identifier(self.shadow)))
