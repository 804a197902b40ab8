"""SQLite read transactions: queries on this thread's connection with no write lock.

A deferred ``BEGIN`` takes no lock until its first read, and then only a shared read
lock on a WAL database, so writers (``BEGIN IMMEDIATE``) are never held up by it; it
sees one snapshot until ``COMMIT``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from esctl_lib.errors import StoreError
from esctl_lib.stores.sqlite.errors import translate_errors
from esctl_lib.stores.sqlite.tx import SqliteTransaction

if TYPE_CHECKING:
    import sqlite3

    from esctl_lib.stores.sqlite.store import SqliteStore


class Read:
    """``BEGIN`` … ``COMMIT`` (deferred: a read snapshot) around one transaction for queries."""

    __slots__ = ("conn", "store")

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    def __enter__(self) -> SqliteTransaction:
        conn: sqlite3.Connection = self.store._conn()
        if conn.in_transaction:
            raise StoreError("a transaction is already open on this thread's connection")
        with translate_errors():
            conn.execute("BEGIN")
        self.conn = conn
        return SqliteTransaction(self.store.encoder, conn)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> Literal[False]:
        if self.conn.in_transaction:
            with translate_errors():
                self.conn.execute("ROLLBACK" if exc is not None else "COMMIT")
        return False
