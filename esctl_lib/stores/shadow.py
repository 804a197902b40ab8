"""Shadow tables: a place beside a processor's live tables to rebuild them in, swapped in
at the end (an online rebuild, ``esctl_lib.processing.rebuild``).

A backend hands one out through :meth:`EventStore.table_shadow`. Handlers keep naming
their tables as declared: :meth:`TableShadow.redirect` gives a transaction in which every
statement that names a declared table (helpers, raw SQL, queued writes, DDL) lands on its
shadow instead. Each backend does that its own way:

- SQLite (and the memory store): the shadow of ``t`` is the table ``t__esctl_rebuild`` in
  the same database; the redirected transaction rewrites the declared identifiers (bare or
  quoted, outside string literals and comments) in every statement, and the names of the
  indexes its DDL creates (``stores/sqlite/shadow.py``).
- PostgreSQL: the shadow tables have their declared names in a schema of their own, put
  first on the redirected transaction's ``search_path`` (``stores/postgres/shadow.py``).

:meth:`TableShadow.swap_in` drops the live tables and puts the shadow ones in their place,
inside the caller's transaction, so that the swap commits (or not) with the tracker move.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from esctl_lib.events import Event
from esctl_lib.stores.base import Transaction

T = TypeVar("T")
Params = Sequence[Any] | Mapping[str, Any]


class TableShadow(ABC):
    """Shadow tables for one processor's declared ``tables`` (see the module docstring)."""

    def __init__(self, key: str, tables: Sequence[str]) -> None:
        #: What the shadow belongs to (a processor's name).
        self.key = key
        #: The declared table names.
        self.tables = list(tables)

    @abstractmethod
    def prepare(self, tx: Transaction) -> None:
        """Drop what an earlier, unfinished rebuild left behind and make room for the
        shadow tables (they are created through :meth:`redirect`)."""

    @abstractmethod
    def redirect(self, tx: Transaction) -> Transaction:
        """``tx``, or a transaction over it, in which the declared table names mean the
        shadow tables."""

    @abstractmethod
    def swap_in(self, tx: Transaction) -> bool:
        """Inside ``tx``: drop the live tables and give the shadow ones their names.

        Returns False, having changed nothing, when the live tables are busy (PostgreSQL:
        their locks could not be taken soon): commit what ``tx`` did and try again later.
        """

    @abstractmethod
    def discard(self, tx: Transaction) -> None:
        """Drop the shadow tables (after a failed or interrupted rebuild)."""


class RedirectedTransaction(Transaction):
    """A transaction whose SQL goes through ``rewrite`` before it reaches ``inner``."""

    def __init__(self, inner: Transaction, rewrite: Callable[[str], str]) -> None:
        self.inner = inner
        self.rewrite = rewrite
        self.dialect = inner.dialect
        self.placeholder = inner.placeholder

    def execute(self, sql: str, params: Params = ()) -> int:
        return self.inner.execute(self.rewrite(sql), params)

    def executemany(self, sql: str, params: Sequence[Params]) -> None:
        self.inner.executemany(self.rewrite(sql), params)

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return self.inner.fetchall(self.rewrite(sql), params)

    def fetch_dicts(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        return self.inner.fetch_dicts(self.rewrite(sql), params)

    def sql_variant(self, variants: Mapping[str, T]) -> T | None:
        return self.inner.sql_variant(variants)

    def relax_durability(self) -> None:
        self.inner.relax_durability()

    def lock_schema_changes(self) -> None:
        self.inner.lock_schema_changes()

    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        return self.inner.append(events, expected_version=expected_version)

    def get_tracker(self, name: str) -> int:
        return self.inner.get_tracker(name)

    def set_tracker(self, name: str, position: int) -> None:
        self.inner.set_tracker(name, position)

    def advance_tracker(self, name: str, expected: int, position: int) -> None:
        self.inner.advance_tracker(name, expected, position)

    def reset_tracker(self, name: str, position: int = 0) -> None:
        self.inner.reset_tracker(name, position)


# Tokens that may hold an identifier, and those that must be left alone (string literals,
# comments). Everything between matches (operators, numbers, blanks) passes through.
_TOKEN = re.compile(
    r"""(?P<string>'(?:[^']|'')*')
      | (?P<line>--[^\n]*)
      | (?P<block>/\*.*?(?:\*/|\Z))
      | "(?P<dq>(?:[^"]|"")*)"
      | `(?P<bt>(?:[^`]|``)*)`
      | \[(?P<br>[^\]]*)\]
      | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)""",
    re.VERBOSE | re.DOTALL,
)
_CREATE_INDEX = re.compile(
    r"""^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?
        (?:"(?P<dq>(?:[^"]|"")+)"|`(?P<bt>[^`]+)`|\[(?P<br>[^\]]+)\]|(?P<word>[A-Za-z_][\w$]*))""",
    re.IGNORECASE | re.VERBOSE,
)


def rename_identifiers(sql: str, names: Mapping[str, str]) -> str:
    """``sql`` with every identifier token found in ``names`` (lower-case keys) replaced
    by its double-quoted new name; string literals and comments are left as they are."""

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup
        if kind in ("string", "line", "block"):
            return match.group(0)
        value = match.group(kind or 0)
        if kind == "dq":
            value = value.replace('""', '"')
        new = names.get(value.lower())
        return match.group(0) if new is None else f'"{new}"'

    return _TOKEN.sub(replace, sql)


def created_index(sql: str) -> str | None:
    """The name of the index a ``CREATE INDEX`` statement creates (None for another)."""
    match = _CREATE_INDEX.match(sql)
    if match is None:
        return None
    kind = match.lastgroup
    return match.group(kind) if kind else None
