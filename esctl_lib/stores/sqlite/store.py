"""The embedded SQLite event store: one file, WAL mode, durable by default.

Appends take ``BEGIN IMMEDIATE``, so writers are serialized and event ids become visible
in commit order: a reader that has seen id *n* can never later find an id below *n*.
Each thread gets its own connection; nothing here crosses a fork.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import Any

from esctl_lib.errors import InvalidEventError, SchemaError, StoreError, StoreUnavailableError
from esctl_lib.events import Event, normalize_uuid
from esctl_lib.files import FILE_MODE, make_private_dirs
from esctl_lib.stores.base import (
    DEFAULT_PAGE_SIZE,
    EXACT_COUNT_LIMIT,
    CountEstimate,
    EventStore,
    Page,
    Snapshot,
    SnapshotInfo,
    check_expected_version,
)
from esctl_lib.stores.locks import ProcessorLock
from esctl_lib.stores.options import SYNCHRONOUS_MODES
from esctl_lib.stores.schema_files import check_not_newer, latest_version, schema_files
from esctl_lib.stores.shadow import TableShadow
from esctl_lib.stores.sqlite import snapshots
from esctl_lib.stores.sqlite.errors import translate_errors
from esctl_lib.stores.sqlite.lock import FileLock, lock_file_path
from esctl_lib.stores.sqlite.trace import by_correlation, caused_by
from esctl_lib.stores.sqlite.trace import find_events as find_by_keys
from esctl_lib.stores.sqlite.tx import SqliteTransaction, Write, append_one
from esctl_lib.stores.sqlite.uuids import Connection, compact, register, to_blob, to_text

_COLUMNS = (
    "id, uuid, aggregate_id, type, body, version, created_at, "
    "correlation_id, causation_id, metadata"
)


class SqliteStore(EventStore):
    """An event store in one SQLite file (``sqlite:///path/to/file.db``)."""

    backend = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 30.0,
        poll_interval: float = 0.005,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        mode = synchronous.upper()
        if mode not in SYNCHRONOUS_MODES:
            raise StoreError(
                f"invalid SQLite synchronous mode {synchronous!r}: "
                f"use one of {', '.join(SYNCHRONOUS_MODES)}"
            )
        self.path = Path(path)
        self.synchronous = mode
        self.busy_timeout = busy_timeout
        self.poll_interval = poll_interval
        self.display_url = f"sqlite:///{self.path}"
        self._local = threading.local()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._appended = threading.Condition()
        self._waiting = 0  # threads in wait(): a commit with none skips the Condition
        self._closed = False

    # -- connections -----------------------------------------------------------------------
    def _conn(self, *, create: bool = False) -> sqlite3.Connection:
        """This thread's connection. Only ``setup`` creates a missing database file."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise StoreError("the store is closed")
        if not create and not self.path.exists():
            raise SchemaError(f"no SQLite store at {self.path}; run `esctl setup` to create it")
        if create:
            self._create_private()
        with translate_errors():
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None,
                check_same_thread=False, factory=Connection,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
        self._local.conn = conn
        with self._conns_lock:
            self._all_conns.append(conn)
        return conn

    def _create_private(self) -> None:
        """Create the database file (and its missing folders) readable by its owner only:
        0600 and 0700, whatever the umask. SQLite gives ``-wal`` and ``-shm`` the mode of
        the database file, so they are private too. An existing file keeps its mode."""
        try:
            make_private_dirs(self.path.parent)
        except OSError as e:
            raise StoreUnavailableError(
                f"cannot create the folder for SQLite database {self.path}: {e.strerror}"
            ) from e
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            return
        except OSError as e:
            raise StoreUnavailableError(
                f"cannot create SQLite database {self.path}: {e.strerror}") from e
        try:
            os.fchmod(fd, FILE_MODE)  # a umask such as 0o277 must not take the owner's rights
        finally:
            os.close(fd)

    def close(self) -> None:
        self._closed = True
        with self._conns_lock:
            conns, self._all_conns = self._all_conns, []
        for conn in conns:
            with suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    # -- schema ------------------------------------------------------------------------------
    def setup(self) -> list[str]:
        done: list[str] = []
        conn = self._conn(create=True)
        with translate_errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version "
                    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
                )
                current = conn.execute(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_version"
                ).fetchone()[0]
                check_not_newer("sqlite", current)
                register(conn)  # esctl_uuid_blob(), for 003_lean_events.sql
                for f in schema_files("sqlite"):
                    if f.version <= current:
                        continue
                    for statement in split_sql(f.sql):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                        (f.version, f.name, time.time()),
                    )
                    done.append(f"applied schema {f.version:03d}_{f.name}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already (a full disk)
                    conn.execute("ROLLBACK")
                raise
        if not done:
            done.append(f"schema is up to date (version {latest_version('sqlite')})")
        return done

    def schema_version(self) -> int:
        if not self.path.exists():
            return 0
        with translate_errors():
            try:
                row = self._conn().execute(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_version"
                ).fetchone()
            except sqlite3.OperationalError as e:
                if "no such table" in str(e):
                    return 0
                raise
        return int(row[0])

    # -- writing -------------------------------------------------------------------------------
    def transaction(self) -> AbstractContextManager[SqliteTransaction]:
        return Write(self)

    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        """See ``EventStore.append``. One event with an expected version (what
        ``Repository.save`` of one change sends) is one statement (``tx.append_one``)."""
        if (expected_version is not None and len(events) == 1
                and isinstance(events[0], Event)):
            check_expected_version(expected_version)
            stored = append_one(self, events[0], expected_version)
            if stored is not None:
                return [stored]
        return super().append(events, expected_version=expected_version)

    def read_transaction(self) -> AbstractContextManager[SqliteTransaction]:
        """Queries without the write lock (``stores/sqlite/read_tx.py``)."""
        from esctl_lib.stores.sqlite.read_tx import Read

        return Read(self)

    def notify_appended(self) -> None:
        """Wake this process's waiters after a commit that appended (none waiting, no
        lock taken: a waiter counts itself in before it reads the position)."""
        if self._waiting:
            with self._appended:
                self._appended.notify_all()

    # -- capabilities ----------------------------------------------------------------------
    def table_shadow(self, key: str, tables: Sequence[str]) -> TableShadow:
        """Shadow tables renamed in the same database (``stores/sqlite/shadow.py``)."""
        from esctl_lib.stores.sqlite.shadow import RenamedShadow

        return RenamedShadow(key, tables)

    def processor_lock(self, name: str) -> ProcessorLock:
        """An OS file lock on ``<db>.locks/<name>.lock`` (see ``stores.sqlite.lock``)."""
        return FileLock(name, lock_file_path(self.path.resolve(), name))

    # -- reading -------------------------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with translate_errors():
            return self._conn().execute(sql, params).fetchall()

    def _decode(self, rows: list[tuple[Any, ...]]) -> list[Event]:
        # Rows are already in event field order; body, metadata and created_at stay text
        # until an event's reader asks for them.
        # uuids are stored as 16 bytes (schema 3) or text (a store at schema 1, or rows
        # written by hand): returned as canonical strings either way.
        text = to_text
        return self.registry.decode_many([
            (r[0], text(r[1]), text(r[2]), r[3], r[4], r[5], r[6], text(r[7]), text(r[8]), r[9])
            for r in rows
        ])

    def _key(self, aggregate_id: Any) -> str | bytearray:
        """An aggregate id as the events table stores it (16 bytes, or text before schema 3)."""
        agg = _aggregate_key(aggregate_id)
        with translate_errors():
            return to_blob(agg) if compact(self._conn()) else agg

    def read_page(
        self,
        position: int,
        *,
        types: Collection[str] | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        until: int | None = None,
    ) -> Page:
        bound = until
        if types is not None:
            head = self._query("SELECT COALESCE(MAX(id), 0) FROM events")[0][0]
            bound = head if until is None else min(until, head)
        sql = f"SELECT {_COLUMNS} FROM events WHERE id > ?"
        params: list[Any] = [position]
        if types is not None:
            type_list = list(types)
            if not type_list:
                return Page([], max(position, bound or 0))
            sql += f" AND type IN ({', '.join('?' for _ in type_list)})"
            params.extend(type_list)
        if bound is not None:
            sql += " AND id <= ?"
            params.append(bound)
        sql += " ORDER BY id LIMIT ?"
        params.append(limit)
        events = self._decode(self._query(sql, params))
        if len(events) >= limit:
            end = events[-1].id
        elif bound is not None:
            end = max(position, bound)
        else:
            end = events[-1].id if events else position
        assert end is not None
        return Page(events, end)

    def read_aggregate(self, aggregate_id: Any, *, from_version: int = 1) -> list[Event]:
        agg = self._key(aggregate_id)
        return self._decode(self._query(
            f"SELECT {_COLUMNS} FROM events WHERE aggregate_id = ? AND version >= ? "
            "ORDER BY version",
            (agg, from_version),
        ))

    def aggregate_version(self, aggregate_id: Any) -> int:
        agg = self._key(aggregate_id)
        return int(self._query(
            "SELECT COALESCE(MAX(version), 0) FROM events WHERE aggregate_id = ?", (agg,)
        )[0][0])

    def latest_position(self, *, types: Collection[str] | None = None) -> int:
        if types is None:
            return int(self._query("SELECT COALESCE(MAX(id), 0) FROM events")[0][0])
        type_list = list(types)
        if not type_list:
            return 0
        # Per type, the stream read backwards from the head to its newest event (schema 4
        # has no type index; at schema 3 one probe of it). Not `type IN (…)`: with the
        # index, several types would be sorted whole.
        best = 0
        for t in type_list:
            row = self._query(
                "SELECT id FROM events WHERE type = ? ORDER BY id DESC LIMIT 1", (t,)
            )
            if row:
                best = max(best, int(row[0][0]))
        return best

    def count(self, *, after: int = 0, types: Collection[str] | None = None) -> int:
        sql = "SELECT COUNT(*) FROM events WHERE id > ?"
        params: list[Any] = [after]
        if types is not None:
            type_list = list(types)
            if not type_list:
                return 0
            sql += f" AND type IN ({', '.join('?' for _ in type_list)})"
            params.extend(type_list)
        return int(self._query(sql, params)[0][0])

    def estimate_count(self, *, after: int = 0, types: Collection[str] | None = None,
                       exact_up_to: int = EXACT_COUNT_LIMIT) -> CountEstimate:
        """Bounded index range scans (``stores/sqlite/estimates.py``)."""
        from esctl_lib.stores.sqlite.estimates import estimate_count

        return estimate_count(self, after, types, exact_up_to)

    def existing_uuids(self, uuids: Collection[str]) -> set[str]:
        found: set[str] = set()
        items: list[Any] = [str(u).lower() for u in uuids]
        with translate_errors():
            lean = compact(self._conn())
        if lean:  # only a valid uuid can be stored, and it is stored as its 16 bytes
            valid = []
            for u in items:
                with suppress(InvalidEventError):
                    valid.append(to_blob(normalize_uuid(u, "uuid")))
            items = valid
        for start in range(0, len(items), 500):
            chunk = items[start:start + 500]
            rows = self._query(
                f"SELECT uuid FROM events WHERE uuid IN ({', '.join('?' for _ in chunk)})", chunk
            )
            found.update(to_text(r[0]) for r in rows)
        return found

    def find_events(
        self, *, ids: Collection[int] = (), uuids: Collection[str] = ()
    ) -> list[Event]:
        return find_by_keys(self, _COLUMNS, ids, uuids)

    def read_by_correlation(
        self, correlation_id: str, *, after: int = 0, limit: int = DEFAULT_PAGE_SIZE
    ) -> list[Event]:
        return by_correlation(self, _COLUMNS, correlation_id, after, limit)

    def read_caused_by(
        self, uuids: Collection[str], *, after: int = 0, limit: int = DEFAULT_PAGE_SIZE
    ) -> list[Event]:
        return caused_by(self, _COLUMNS, uuids, after, limit)

    # -- snapshots (``stores/sqlite/snapshots.py``) -------------------------------------------
    def read_from_snapshot(
        self, aggregate_id: Any, aggregate_type: str, snapshot_version: int, *,
        tail: bool = True,
    ) -> tuple[Snapshot | None, list[Event]]:
        return snapshots.read_from_snapshot(self, aggregate_id, aggregate_type,
                                            snapshot_version, tail)

    def snapshots(self) -> list[SnapshotInfo]:
        return snapshots.infos(self._conn())

    def drop_snapshots(self, aggregate_type: str | None = None) -> int:
        with self.transaction() as tx:
            return snapshots.drop(tx._conn, aggregate_type)

    def wait(self, position: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._appended:
            self._waiting += 1
        try:
            while True:
                if self.latest_position() > position:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                with self._appended:
                    self._appended.wait(min(self.poll_interval, remaining))
        finally:
            with self._appended:
                self._waiting -= 1


def _aggregate_key(aggregate_id: Any) -> str:
    return normalize_uuid(aggregate_id, "aggregate_id")


def split_sql(script: str) -> list[str]:
    """Split a schema file into statements (our files keep ``;`` at line ends only)."""
    statements, current = [], []
    for line in script.splitlines():
        stripped = line.strip()
        if stripped.startswith("--") or not stripped:
            continue
        current.append(line)
        if stripped.endswith(";"):
            statements.append("\n".join(current))
            current = []
    if current:
        statements.append("\n".join(current))
    return statements
