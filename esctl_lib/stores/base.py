"""The event store contract shared by every backend.

A store keeps events in one global stream. Positions are event ids. A backend may order
its stream by something finer than the id (PostgreSQL orders by writing transaction, then
id, so that no reader ever skips an event committed late), so the only ways to move along
the stream are :meth:`EventStore.read_page` and what is built on it: never ``id > n``.

Everything that must commit together (projection rows, a tracker position, events a
reactor emits) goes through one :class:`Transaction` from :meth:`EventStore.transaction`.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from esctl_lib.errors import InvalidEventError, TrackerError
from esctl_lib.events import Event, EventRegistry, default_registry, normalize_uuid
from esctl_lib.serialization import BodyEncoder, default_encoder

DEFAULT_PAGE_SIZE = 1000
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def quote_identifier(name: str) -> str:
    """Validate a table or column name and return it double-quoted."""
    if not _IDENTIFIER_RE.match(name):
        raise ValueError(f"invalid SQL identifier {name!r}: use letters, digits and underscores")
    return f'"{name}"'


@dataclass(frozen=True, slots=True)
class Page:
    """One read of the stream: matching ``events``, and ``end``, the position to resume from.

    ``end`` covers every event scanned, matching or not, so a reader of rare types moves on
    past the events it does not want.
    """

    events: list[Event]
    end: int


class Transaction(ABC):
    """One atomic unit of work on a store: appends, tracker moves and projection rows.

    Raw SQL (:meth:`execute`, :meth:`fetchall`) uses the backend's own parameter style,
    given by :attr:`placeholder` (``?`` on SQLite, ``%s`` on PostgreSQL). The helpers
    (:meth:`insert`, :meth:`upsert`, :meth:`update`, :meth:`delete`, :meth:`select`) are
    portable. Table and column names are validated and quoted; values are always bound.
    """

    dialect: str = ""
    placeholder: str = "?"

    # -- raw SQL -------------------------------------------------------------------------
    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> int:
        """Run one statement; returns the number of rows it changed (or -1)."""

    @abstractmethod
    def executemany(self, sql: str, params: Sequence[Sequence[Any] | Mapping[str, Any]]) -> None:
        """Run one statement for each parameter set."""

    @abstractmethod
    def fetchall(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        """Run a query and return every row as a tuple."""

    def fetchone(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> tuple[Any, ...] | None:
        """Run a query and return its first row, or None."""
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    # -- store operations inside this transaction -----------------------------------------
    @abstractmethod
    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        """Append events of one aggregate as part of this transaction (see EventStore.append)."""

    def get_tracker(self, name: str) -> int:
        """The tracker's position, 0 when it has none."""
        row = self.fetchone(
            f"SELECT position FROM trackers WHERE name = {self.placeholder}", (name,)
        )
        return int(row[0]) if row else 0

    def set_tracker(self, name: str, position: int) -> None:
        """Move a tracker forward; raises :class:`TrackerError` if that would move it back."""
        p = self.placeholder
        changed = self.execute(
            f"INSERT INTO trackers (name, position, updated_at) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
            "updated_at = excluded.updated_at WHERE trackers.position <= excluded.position",
            (name, position, time.time()),
        )
        if changed == 0:
            raise TrackerError(
                f"tracker {name!r} is past position {position}; reset it to move it back"
            )

    def advance_tracker(self, name: str, expected: int, position: int) -> None:
        """Move a tracker from ``expected`` to ``position``, as a compare-and-set.

        Raises :class:`TrackerError` when the tracker is no longer at ``expected``: someone
        else (another instance of the processor, a reset) moved it, and this transaction
        must not commit its batch on top.
        """
        p = self.placeholder
        now = time.time()
        changed = self.execute(
            f"UPDATE trackers SET position = {p}, updated_at = {p} "
            f"WHERE name = {p} AND position = {p}",
            (position, now, name, expected),
        )
        if changed != 1 and expected == 0:
            changed = self.execute(
                f"INSERT INTO trackers (name, position, updated_at) VALUES ({p}, {p}, {p}) "
                "ON CONFLICT (name) DO NOTHING",
                (name, position, now),
            )
        if changed != 1:
            raise TrackerError(
                f"tracker {name!r} moved away from position {expected} (now at "
                f"{self.get_tracker(name)}) while this batch ran; is another instance running?"
            )

    def reset_tracker(self, name: str, position: int = 0) -> None:
        """Put a tracker at ``position`` (0 by default), forwards or backwards."""
        self.upsert(
            "trackers",
            {"name": name, "position": position, "updated_at": time.time()},
            key=("name",),
        )

    # -- portable helpers ----------------------------------------------------------------
    def insert(self, table: str, values: Mapping[str, Any]) -> None:
        """INSERT one row."""
        cols = ", ".join(quote_identifier(c) for c in values)
        marks = ", ".join(self.placeholder for _ in values)
        self.execute(f"INSERT INTO {quote_identifier(table)} ({cols}) VALUES ({marks})",
                     tuple(values.values()))

    def insert_many(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """INSERT many rows that share the same columns."""
        if not rows:
            return
        names = list(rows[0])
        cols = ", ".join(quote_identifier(c) for c in names)
        marks = ", ".join(self.placeholder for _ in names)
        self.executemany(
            f"INSERT INTO {quote_identifier(table)} ({cols}) VALUES ({marks})",
            [tuple(row[c] for c in names) for row in rows],
        )

    def upsert(
        self,
        table: str,
        values: Mapping[str, Any],
        *,
        key: Sequence[str],
        update: Sequence[str] | None = None,
    ) -> None:
        """INSERT a row, or UPDATE the columns in ``update`` (default: all but the key)."""
        cols = ", ".join(quote_identifier(c) for c in values)
        marks = ", ".join(self.placeholder for _ in values)
        keys = ", ".join(quote_identifier(c) for c in key)
        to_update = [c for c in values if c not in key] if update is None else list(update)
        if to_update:
            sets = ", ".join(
                f"{quote_identifier(c)} = excluded.{quote_identifier(c)}" for c in to_update
            )
            action = f"DO UPDATE SET {sets}"
        else:
            action = "DO NOTHING"
        self.execute(
            f"INSERT INTO {quote_identifier(table)} ({cols}) VALUES ({marks}) "
            f"ON CONFLICT ({keys}) {action}",
            tuple(values.values()),
        )

    def update(self, table: str, values: Mapping[str, Any], *, where: Mapping[str, Any]) -> int:
        """UPDATE rows matching every ``where`` column; returns how many changed."""
        sets = ", ".join(f"{quote_identifier(c)} = {self.placeholder}" for c in values)
        cond, params = self._where(where)
        return self.execute(f"UPDATE {quote_identifier(table)} SET {sets}{cond}",
                            (*values.values(), *params))

    def delete(self, table: str, *, where: Mapping[str, Any]) -> int:
        """DELETE rows matching every ``where`` column; returns how many went."""
        cond, params = self._where(where)
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
        cond, params = self._where(where or {})
        order = ""
        if order_by:
            parts = [
                f"{quote_identifier(c[1:])} DESC" if c.startswith("-") else quote_identifier(c)
                for c in order_by
            ]
            order = " ORDER BY " + ", ".join(parts)
        lim = f" LIMIT {int(limit)}" if limit is not None else ""
        sql = f"SELECT {cols} FROM {quote_identifier(table)}{cond}{order}{lim}"
        return self._fetch_dicts(sql, params)

    @abstractmethod
    def _fetch_dicts(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """Run a query and return rows as dicts keyed by column name."""

    def _where(self, where: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
        if not where:
            return "", ()
        parts = []
        params: list[Any] = []
        for col, value in where.items():
            if value is None:
                parts.append(f"{quote_identifier(col)} IS NULL")
            else:
                parts.append(f"{quote_identifier(col)} = {self.placeholder}")
                params.append(value)
        return " WHERE " + " AND ".join(parts), tuple(params)


class EventStore(ABC):
    """An append-only event store. Backends: memory, SQLite, PostgreSQL (see ``open_store``)."""

    #: The store's URL with any password masked; safe to print.
    display_url: str = ""
    #: "memory", "sqlite" or "postgresql".
    dialect: str = ""

    def __init__(
        self,
        *,
        registry: EventRegistry | None = None,
        encoder: BodyEncoder | None = None,
    ) -> None:
        self.registry = registry or default_registry
        self.encoder = encoder or default_encoder

    # -- lifecycle -----------------------------------------------------------------------
    @abstractmethod
    def setup(self) -> list[str]:
        """Create or upgrade the schema; idempotent. Returns what it did, one line per step."""

    @abstractmethod
    def schema_version(self) -> int:
        """The schema version in the database (0 when not set up)."""

    def close(self) -> None:
        """Release connections and files. The store cannot be used afterwards."""

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------
    @abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """A write transaction: everything done through it commits together or not at all."""

    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        """Append events of one aggregate atomically; returns them with ids and versions.

        ``expected_version`` is the aggregate's version before these events (0 for a new
        aggregate); a mismatch raises :class:`ConcurrencyError` and writes nothing. ``None``
        appends without a check. A uuid already stored raises :class:`DuplicateEventError`.
        """
        with self.transaction() as tx:
            return tx.append(events, expected_version=expected_version)

    # -- reading -------------------------------------------------------------------------
    @abstractmethod
    def read_page(
        self,
        position: int,
        *,
        types: Collection[str] | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        until: int | None = None,
    ) -> Page:
        """Events after ``position`` in stream order (optionally of ``types``, at most ``limit``,
        none past ``until``), and the position the scan reached."""

    def read_after(
        self,
        position: int,
        *,
        types: Collection[str] | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
    ) -> list[Event]:
        """Events after ``position`` in stream order, optionally of ``types``, at most ``limit``."""
        return self.read_page(position, types=types, limit=limit).events

    @abstractmethod
    def read_aggregate(self, aggregate_id: Any, *, from_version: int = 1) -> list[Event]:
        """One aggregate's events in version order, starting at ``from_version``."""

    @abstractmethod
    def aggregate_version(self, aggregate_id: Any) -> int:
        """An aggregate's current version (0 when it has no events)."""

    @abstractmethod
    def latest_position(self, *, types: Collection[str] | None = None) -> int:
        """The position of the newest readable event (of ``types``), 0 when there is none."""

    @abstractmethod
    def count(
        self,
        *,
        after: int = 0,
        types: Collection[str] | None = None,
    ) -> int:
        """How many readable events lie after ``after`` (of ``types``)."""

    @abstractmethod
    def existing_uuids(self, uuids: Collection[str]) -> set[str]:
        """Which of these event uuids are already stored."""

    def oldest_time_after(
        self, position: int, *, types: Collection[str] | None = None
    ) -> dt.datetime | None:
        """``created_at`` of the first event after ``position`` (of ``types``), or None."""
        page = self.read_page(position, types=types, limit=1)
        return page.events[0].created_at if page.events else None

    def iter_range(
        self,
        after: int = 0,
        until: int | None = None,
        *,
        types: Collection[str] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[Event]:
        """Stream events after ``after`` up to and including ``until`` (default: the head now),
        page by page in constant memory. Never yields past ``until``, filtered or not."""
        if until is None:
            until = self.latest_position()
        position = after
        while True:
            page = self.read_page(position, types=types, limit=page_size, until=until)
            yield from page.events
            if page.end == position or len(page.events) < page_size:
                return
            position = page.end

    @abstractmethod
    def wait(self, position: int, timeout: float) -> bool:
        """Block until an event after ``position`` may be readable, or ``timeout`` seconds pass.

        Returns True when woken by a possible new event, False on timeout. A True may be a
        false alarm: callers read and wait again.
        """

    def subscribe(
        self,
        position: int = 0,
        *,
        types: Collection[str] | None = None,
        batch_size: int = DEFAULT_PAGE_SIZE,
        stop: threading.Event | None = None,
        idle_timeout: float = 1.0,
        on_idle: Callable[[int], None] | None = None,
    ) -> Iterator[Page]:
        """Follow the stream from ``position`` for ever (or until ``stop`` is set).

        Yields non-empty pages; between pages the caller may do its work. When caught up,
        waits for new events, waking at least every ``idle_timeout`` seconds to check
        ``stop`` (and call ``on_idle`` with the current position).
        """
        while stop is None or not stop.is_set():
            page = self.read_page(position, types=types, limit=batch_size)
            if page.events:
                yield page
            position = page.end
            if len(page.events) < batch_size:
                if on_idle is not None:
                    on_idle(position)
                if stop is not None and stop.is_set():
                    return
                self.wait(position, idle_timeout)

    # -- trackers ------------------------------------------------------------------------
    def get_tracker(self, name: str) -> int:
        """A processor's tracker position (0 when it has none)."""
        with self.transaction() as tx:
            return tx.get_tracker(name)

    def set_tracker(self, name: str, position: int) -> None:
        """Move a tracker forward (never back; see :meth:`reset_tracker`)."""
        with self.transaction() as tx:
            tx.set_tracker(name, position)

    def reset_tracker(self, name: str, position: int = 0) -> None:
        """Put a tracker at ``position``, forwards or backwards."""
        with self.transaction() as tx:
            tx.reset_tracker(name, position)

    def trackers(self) -> dict[str, int]:
        """Every tracker and its position."""
        with self.transaction() as tx:
            rows = tx.fetchall("SELECT name, position FROM trackers ORDER BY name")
        return {str(name): int(pos) for name, pos in rows}


def check_one_aggregate(events: Sequence[Event]) -> str:
    """The single aggregate id of an append; raises if there are none or several."""
    if not events:
        raise InvalidEventError("nothing to append: no events given")
    first = events[0].aggregate_id
    for event in events:
        if not isinstance(event, Event):
            raise InvalidEventError(f"not an Event: {event!r}")
        if event.aggregate_id != first:
            raise InvalidEventError(
                "one append may only hold events of one aggregate "
                f"(got {first} and {event.aggregate_id})"
            )
    return normalize_uuid(first, "aggregate_id")


def check_expected_version(expected_version: int | None) -> None:
    """Reject a negative or non-integer expected version."""
    if expected_version is not None and (
        not isinstance(expected_version, int) or expected_version < 0
    ):
        raise InvalidEventError(
            f"expected_version must be a whole number >= 0, got {expected_version!r}"
        )
