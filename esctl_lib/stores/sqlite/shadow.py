"""Shadow tables on SQLite (and the memory store): renamed tables in the same database.

The shadow of table ``t`` is ``t__esctl_rebuild``; the redirected transaction rewrites
each declared table name in every statement it runs (a token-level rewrite that leaves
string literals and comments alone), and the name of each index a ``CREATE INDEX`` creates,
since SQLite index names are unique per database.

The swap, inside the caller's ``BEGIN IMMEDIATE`` (so between any other writer's
transactions), drops the live tables and renames the shadow ones, with
``legacy_alter_table`` on so that the application's views and triggers that name a table
keep naming it (and now read the new one), and foreign keys deferred to the commit so that
the tables may go in any order. SQLite cannot rename an index, so each index the shadow's
DDL created is built again under its declared name (a cost paid inside the swap).
"""

from __future__ import annotations

from collections.abc import Sequence

from esctl_lib.stores.base import Transaction
from esctl_lib.stores.shadow import (
    RedirectedTransaction,
    TableShadow,
    created_index,
    rename_identifiers,
)

SUFFIX = "__esctl_rebuild"


def shadow_name(name: str) -> str:
    """The shadow of table (or index) ``name``."""
    return f"{name}{SUFFIX}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class RenamedShadow(TableShadow):
    """Shadow tables renamed within one SQLite database (see the module docstring)."""

    def __init__(self, key: str, tables: Sequence[str]) -> None:
        super().__init__(key, tables)
        self.names = {t.lower(): shadow_name(t) for t in self.tables}
        #: Declared index name → its CREATE statement as declared.
        self.index_ddl: dict[str, str] = {}

    def _rewrite(self, sql: str) -> str:
        index = created_index(sql)
        if index is not None and index.lower() not in self.names:
            self.names[index.lower()] = shadow_name(index)
            self.index_ddl.setdefault(index.lower(), sql)
        return rename_identifiers(sql, self.names)

    def prepare(self, tx: Transaction) -> None:
        self.discard(tx)

    def redirect(self, tx: Transaction) -> Transaction:
        return RedirectedTransaction(tx, self._rewrite)

    def swap_in(self, tx: Transaction) -> bool:
        tx.execute("PRAGMA defer_foreign_keys = ON")
        tx.execute("PRAGMA legacy_alter_table = ON")
        try:
            for table in self.tables:
                tx.execute(f"DROP TABLE IF EXISTS {_quote(table)}")
            for table in self.tables:
                tx.execute(f"ALTER TABLE {_quote(shadow_name(table))} RENAME TO {_quote(table)}")
            for index, ddl in self.index_ddl.items():
                tx.execute(f"DROP INDEX IF EXISTS {_quote(self.names[index])}")
                tx.execute(ddl)
        finally:
            tx.execute("PRAGMA legacy_alter_table = OFF")
        return True

    def discard(self, tx: Transaction) -> None:
        tx.execute("PRAGMA defer_foreign_keys = ON")
        for table in self.tables:
            tx.execute(f"DROP TABLE IF EXISTS {_quote(shadow_name(table))}")
