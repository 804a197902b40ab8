"""An in-process event store for tests (``memory://``).

Events live in a Python list as stored records, bodies and metadata as JSON text, so that
nothing a caller does to an event it appended or read can change what is stored. Trackers
and projection tables live in a private in-memory SQLite database, so projectors run
unchanged; a transaction's appends become visible only when it commits, together with its
rows and tracker moves. Processor locks are local to the process (:class:`LocalLock`).
"""

from __future__ import annotations

import bisect
import json
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from esctl_lib.errors import ConcurrencyError, DuplicateEventError, StoreError
from esctl_lib.events import Event, EventField, normalize_uuid
from esctl_lib.stores.base import (
    DEFAULT_PAGE_SIZE,
    EventStore,
    Page,
    Snapshot,
    SnapshotInfo,
    check_expected_version,
    check_one_aggregate,
    lower_uuids,
)
from esctl_lib.stores.encoding import prepare_events
from esctl_lib.stores.locks import ProcessorLock, describe_self
from esctl_lib.stores.schema_files import latest_version, schema_files
from esctl_lib.stores.shadow import TableShadow
from esctl_lib.stores.sqlite import SqliteTransaction, snapshots, split_sql, translate_errors
from esctl_lib.stores.sqlite.uuids import register as register_uuid_functions

_dump = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_ID, _UUID, _AGGREGATE, _TYPE = (
    EventField.ID, EventField.UUID, EventField.AGGREGATE_ID, EventField.TYPE)
#: A stored event: its fields in ``EVENT_FIELDS`` order, body and metadata as JSON text.
Record = tuple[Any, ...]


class MemoryTransaction(SqliteTransaction):
    """Rows go to the in-memory SQLite database; appended events wait for the commit."""

    def __init__(self, store: MemoryStore, conn: sqlite3.Connection) -> None:
        super().__init__(store.encoder, conn)
        self._memory = store
        self.pending: list[Record] = []

    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        aggregate_id = check_one_aggregate(events)
        check_expected_version(expected_version)
        prepared = prepare_events(events, self._memory.encoder)
        store = self._memory
        current = store.aggregate_version(aggregate_id) + sum(
            1 for r in self.pending if r[_AGGREGATE] == aggregate_id
        )
        if expected_version is not None and expected_version != current:
            raise ConcurrencyError(aggregate_id, expected_version, current)
        taken = {r[_UUID] for r in self.pending}
        for p in prepared:
            if p.uuid in store._uuids or p.uuid in taken:
                raise DuplicateEventError(p.uuid)
            taken.add(p.uuid)
        base = len(store._records) + len(self.pending)
        out = []
        for i, p in enumerate(prepared, start=1):
            fields = (base + i, p.uuid, aggregate_id, p.type, p.body, current + i, p.created_at,
                      p.correlation_id, p.causation_id, p.metadata)
            self.pending.append((*fields[:4], _dump(p.body), *fields[5:9],
                                 _dump(p.metadata) if p.metadata else None))
            out.append(p.event_class.from_stored(*fields))
        return out


class LocalLock(ProcessorLock):
    """A processor lock local to one memory store (which no other process can share)."""

    def __init__(self, store: MemoryStore, name: str) -> None:
        super().__init__(name)
        self._store = store

    def try_acquire(self) -> bool:
        if self.held:
            return True
        with self._store._lock:
            names = self._store._locked
            if self.name in names:
                return False
            names.add(self.name)
        self.held = True
        return True

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        with self._store._lock:
            self._store._locked.discard(self.name)

    def holder(self) -> str | None:
        if self.held:
            return describe_self()
        return "this process" if self.name in self._store._locked else None


class MemoryStore(EventStore):
    """Events in memory; nothing survives the process."""

    backend = "memory"
    display_url = "memory://"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._records: list[Record] = []
        self._ids: list[int] = []
        self._uuids: set[str] = set()
        self._by_aggregate: dict[str, list[Record]] = {}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._locked: set[str] = set()  # processors whose LocalLock is held
        # Tables and trackers: one shared in-memory SQLite connection, used under the lock.
        self._db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        register_uuid_functions(self._db)  # the SQLite schema files use esctl_uuid_blob()
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

    def table_shadow(self, key: str, tables: Sequence[str]) -> TableShadow:
        """Shadow tables renamed in the same database (``stores/sqlite/shadow.py``)."""
        from esctl_lib.stores.sqlite.shadow import RenamedShadow

        return RenamedShadow(key, tables)

    def processor_lock(self, name: str) -> ProcessorLock:
        """A lock local to this store object (see :class:`LocalLock`)."""
        return LocalLock(self, name)

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
            for record in tx.pending:
                self._records.append(record)
                self._ids.append(record[_ID])
                self._uuids.add(record[_UUID])
                self._by_aggregate.setdefault(record[_AGGREGATE], []).append(record)
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
            head = len(self._records)
            bound = head if until is None else min(until, head)
            start = bisect.bisect_right(self._ids, position)
            wanted = None if types is None else set(types)
            out: list[Record] = []
            end = max(position, bound)
            for index in range(start, bound):
                record = self._records[index]
                if wanted is None or record[_TYPE] in wanted:
                    out.append(record)
                    if len(out) >= limit:
                        end = record[_ID]
                        break
            return Page(self.registry.decode_many(out), end)

    def read_aggregate(self, aggregate_id: Any, *, from_version: int = 1) -> list[Event]:
        key = normalize_uuid(aggregate_id, "aggregate_id")
        with self._lock:
            history = self._by_aggregate.get(key, [])[max(from_version, 1) - 1:]
            return self.registry.decode_many(history)

    def aggregate_version(self, aggregate_id: Any) -> int:
        key = normalize_uuid(aggregate_id, "aggregate_id")
        with self._lock:
            return len(self._by_aggregate.get(key, ()))

    def latest_position(self, *, types: Collection[str] | None = None) -> int:
        with self._lock:
            if types is None:
                return len(self._records)
            wanted = set(types)
            for record in reversed(self._records):
                if record[_TYPE] in wanted:
                    found: int = record[_ID]
                    return found
            return 0

    def count(self, *, after: int = 0, types: Collection[str] | None = None) -> int:
        with self._lock:
            tail = self._records[bisect.bisect_right(self._ids, after):]
            if types is None:
                return len(tail)
            wanted = set(types)
            return sum(1 for r in tail if r[_TYPE] in wanted)

    def existing_uuids(self, uuids: Collection[str]) -> set[str]:
        with self._lock:
            return {u.lower() for u in uuids if u.lower() in self._uuids}

    def find_events(
        self, *, ids: Collection[int] = (), uuids: Collection[str] = ()
    ) -> list[Event]:
        wanted_ids, wanted_uuids = set(ids), set(lower_uuids(uuids))
        with self._lock:
            found = [r for r in self._records if r[_ID] in wanted_ids or r[_UUID] in wanted_uuids]
            return self.registry.decode_many(found)

    def read_by_correlation(
        self, correlation_id: str, *, after: int = 0, limit: int = DEFAULT_PAGE_SIZE
    ) -> list[Event]:
        return self._linked(EventField.CORRELATION_ID, set(lower_uuids([correlation_id])),
                            after, limit)

    def read_caused_by(
        self, uuids: Collection[str], *, after: int = 0, limit: int = DEFAULT_PAGE_SIZE
    ) -> list[Event]:
        return self._linked(EventField.CAUSATION_ID, set(lower_uuids(uuids)), after, limit)

    def _linked(self, field: int, wanted: set[str], after: int, limit: int) -> list[Event]:
        out: list[Record] = []
        with self._lock:
            for record in self._records[bisect.bisect_right(self._ids, after):]:
                if record[field] in wanted:
                    out.append(record)
                    if len(out) >= limit:
                        break
            return self.registry.decode_many(out)

    # -- snapshots: rows of the in-memory database (``stores/sqlite/snapshots.py``) ----------
    def read_from_snapshot(
        self, aggregate_id: Any, aggregate_type: str, snapshot_version: int, *,
        tail: bool = True,
    ) -> tuple[Snapshot | None, list[Event]]:
        key = normalize_uuid(aggregate_id, "aggregate_id")
        with self._lock:
            if not self._set_up:
                return None, self.read_aggregate(key) if tail else []
            snapshot = snapshots.load(self._db, key, aggregate_type, snapshot_version)
            if not tail:
                return snapshot, []
            start = snapshot.version + 1 if snapshot is not None else 1
            return snapshot, self.read_aggregate(key, from_version=start)

    def snapshots(self) -> list[SnapshotInfo]:
        with self._lock:
            return snapshots.infos(self._db) if self._set_up else []

    def drop_snapshots(self, aggregate_type: str | None = None) -> int:
        with self.transaction() as tx:
            return snapshots.drop(tx._conn, aggregate_type)

    def wait(self, position: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self._records) > position, timeout)
