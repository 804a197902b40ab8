"""An in-process event store for tests (``memory://``).

Events live in a Python list. Trackers and projection tables live in a private in-memory
SQLite database, so projectors run unchanged; a transaction's appends become visible only
when it commits, together with its rows and tracker moves.
"""

from __future__ import annotations

import bisect
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from esctl_lib.errors import ConcurrencyError, DuplicateEventError, StoreError
from esctl_lib.events import Event, normalize_uuid
from esctl_lib.stores.base import (
    DEFAULT_PAGE_SIZE,
    EventStore,
    Page,
    check_expected_version,
    check_one_aggregate,
)
from esctl_lib.stores.encoding import prepare_events
from esctl_lib.stores.schema_files import latest_version, schema_files
from esctl_lib.stores.sqlite import SqliteTransaction, split_sql, translate_errors


class MemoryTransaction(SqliteTransaction):
    """Rows go to the in-memory SQLite database; appended events wait for the commit."""

    def __init__(self, store: MemoryStore, conn: sqlite3.Connection) -> None:
        super().__init__(store.encoder, conn)
        self._memory = store
        self.pending: list[Event] = []

    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        aggregate_id = check_one_aggregate(events)
        check_expected_version(expected_version)
        prepared = prepare_events(events, self._memory.encoder)
        store = self._memory
        current = store.aggregate_version(aggregate_id) + sum(
            1 for e in self.pending if e.aggregate_id == aggregate_id
        )
        if expected_version is not None and expected_version != current:
            raise ConcurrencyError(aggregate_id, expected_version, current)
        taken = {e.uuid for e in self.pending}
        for p in prepared:
            if p.uuid in store._uuids or p.uuid in taken:
                raise DuplicateEventError(p.uuid)
            taken.add(p.uuid)
        base = len(store._events) + len(self.pending)
        stored: list[Event] = [
            p.event_class._trusted(
                (base + i, p.uuid, aggregate_id, p.type, p.body, current + i, p.created_at,
                 p.correlation_id, p.causation_id, p.metadata)
            )
            for i, p in enumerate(prepared, start=1)
        ]
        self.pending.extend(stored)
        return stored


class MemoryStore(EventStore):
    """Events in memory; nothing survives the process."""

    dialect = "memory"
    display_url = "memory://"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._events: list[Event] = []
        self._ids: list[int] = []
        self._uuids: set[str] = set()
        self._by_aggregate: dict[str, list[Event]] = {}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        # Tables and trackers: one shared in-memory SQLite connection, used under the lock.
        self._db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._set_up = False

    def setup(self) -> list[str]:
        with self._lock:
            if self._set_up:
                return [f"schema is up to date (version {latest_version('sqlite')})"]
            with translate_errors():
                for f in schema_files("sqlite"):
                    for statement in split_sql(f.sql):
                        self._db.execute(statement)
            self._set_up = True
            return ["created in-memory tables"]

    def schema_version(self) -> int:
        return latest_version("sqlite") if self._set_up else 0

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[MemoryTransaction]:
        with self._lock:
            if not self._set_up:
                self.setup()
            if self._db.in_transaction:
                raise StoreError("a transaction is already open on this store")
            self._db.execute("BEGIN")
            tx = MemoryTransaction(self, self._db)
            try:
                yield tx
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            for event in tx.pending:
                self._events.append(event)
                assert event.id is not None
                self._ids.append(event.id)
                self._uuids.add(event.uuid)
                self._by_aggregate.setdefault(event.aggregate_id, []).append(event)
            if tx.pending:
                self._changed.notify_all()

    def read_page(
        self,
        position: int,
        *,
        types: Collection[str] | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        until: int | None = None,
    ) -> Page:
        with self._lock:
            head = len(self._events)
            bound = head if until is None else min(until, head)
            start = bisect.bisect_right(self._ids, position)
            wanted = None if types is None else set(types)
            out: list[Event] = []
            end = max(position, bound)
            for index in range(start, bound):
                event = self._events[index]
                if wanted is None or event.type in wanted:
                    out.append(event)
                    if len(out) >= limit:
                        assert event.id is not None
                        end = event.id
                        break
            decode = self.registry.decode
            return Page([decode(_fields(e)) for e in out], end)

    def read_aggregate(self, aggregate_id: Any, *, from_version: int = 1) -> list[Event]:
        key = normalize_uuid(aggregate_id, "aggregate_id")
        with self._lock:
            history = self._by_aggregate.get(key, [])[max(from_version, 1) - 1:]
            return [self.registry.decode(_fields(e)) for e in history]

    def aggregate_version(self, aggregate_id: Any) -> int:
        key = normalize_uuid(aggregate_id, "aggregate_id")
        with self._lock:
            return len(self._by_aggregate.get(key, ()))

    def latest_position(self, *, types: Collection[str] | None = None) -> int:
        with self._lock:
            if types is None:
                return len(self._events)
            wanted = set(types)
            for event in reversed(self._events):
                if event.type in wanted:
                    assert event.id is not None
                    return event.id
            return 0

    def count(self, *, after: int = 0, types: Collection[str] | None = None) -> int:
        with self._lock:
            tail = self._events[bisect.bisect_right(self._ids, after):]
            if types is None:
                return len(tail)
            wanted = set(types)
            return sum(1 for e in tail if e.type in wanted)

    def existing_uuids(self, uuids: Collection[str]) -> set[str]:
        with self._lock:
            return {u.lower() for u in uuids if u.lower() in self._uuids}

    def wait(self, position: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self._events) > position, timeout)


def _fields(event: Event) -> tuple[Any, ...]:
    """The stored fields of an event, with its stored type name, for re-decoding on read."""
    return (event.id, event.uuid, event.aggregate_id, event.type, dict(event.body),
            event.version, event.created_at, event.correlation_id, event.causation_id,
            dict(event.metadata))
