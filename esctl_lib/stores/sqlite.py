"""The embedded SQLite event store: one file, WAL mode, durable by default.

Appends take ``BEGIN IMMEDIATE``, so writers are serialized and event ids become visible
in commit order: a reader that has seen id *n* can never later find an id below *n*.
Each thread gets its own connection; nothing here crosses a fork.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import Any, Literal

from esctl_lib.errors import (
    ConcurrencyError,
    DuplicateEventError,
    SchemaError,
    StoreError,
    StoreUnavailableError,
)
from esctl_lib.events import Event, normalize_uuid, utc_now
from esctl_lib.serialization import BodyEncoder
from esctl_lib.stores.base import (
    DEFAULT_PAGE_SIZE,
    EventStore,
    Page,
    Transaction,
    check_expected_version,
    check_one_aggregate,
)
from esctl_lib.stores.schema_files import check_not_newer, latest_version, schema_files

SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA", "OFF")
_COLUMNS = (
    "id, uuid, aggregate_id, type, body, version, created_at, "
    "correlation_id, causation_id, metadata"
)
_INSERT = (
    "INSERT INTO events (uuid, aggregate_id, type, body, version, created_at, "
    "correlation_id, causation_id, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The aggregate's version and the greatest id, in one statement (inside BEGIN IMMEDIATE).
_HEAD = (
    "SELECT (SELECT COALESCE(MAX(version), 0) FROM events WHERE aggregate_id = ?), "
    "(SELECT COALESCE(MAX(id), 0) FROM events)"
)
# Compact JSON, as stored so far; one encoder object instead of one per call.
_dump = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class _Translate:
    """Context manager behind :func:`translate_errors` (stateless, so one serves all)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> Literal[False]:
        if isinstance(exc, sqlite3.DatabaseError):
            raise _translated(exc) from exc
        return False


_TRANSLATE = _Translate()


def translate_errors() -> _Translate:
    """Turn sqlite3 errors into the library's errors: the one place that does it."""
    return _TRANSLATE


def _translated(e: sqlite3.DatabaseError) -> StoreError:
    text = str(e)
    if isinstance(e, sqlite3.IntegrityError):
        if "events.uuid" in text:
            return DuplicateEventError()
        return StoreError(f"SQLite integrity error: {text}")
    if isinstance(e, sqlite3.OperationalError):
        if "no such table" in text:
            return SchemaError(f"the store is not set up ({text}); run `esctl setup`")
        if "locked" in text or "busy" in text:
            return StoreUnavailableError(f"SQLite database is busy: {text}")
        if "unable to open" in text or "disk" in text or "readonly" in text:
            return StoreUnavailableError(f"SQLite database unavailable: {text}")
    return StoreError(f"SQLite error: {text}")


class SqliteTransaction(Transaction):
    """A transaction on one SQLite connection (``BEGIN IMMEDIATE`` … ``COMMIT``)."""

    dialect = "sqlite"
    placeholder = "?"

    def __init__(self, encoder: BodyEncoder, conn: sqlite3.Connection) -> None:
        self._encoder = encoder
        self._conn = conn
        self.appended = False

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> int:
        with translate_errors():
            return self._conn.execute(sql, params).rowcount

    def executemany(self, sql: str, params: Sequence[Sequence[Any] | Mapping[str, Any]]) -> None:
        with translate_errors():
            self._conn.executemany(sql, params)

    def fetchall(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        with translate_errors():
            return self._conn.execute(sql, params).fetchall()

    def _fetch_dicts(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        with translate_errors():
            cur = self._conn.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        if len(events) == 1 and isinstance(events[0], Event):
            aggregate_id = events[0].aggregate_id  # canonical: Event normalizes it
        else:
            aggregate_id = check_one_aggregate(events)
        check_expected_version(expected_version)
        encode = self._encoder.encode_body
        now = utc_now()
        # Encode everything first: a body that cannot be encoded fails before any write.
        rows = [(e, encode(e.body), encode(e.metadata) if e.metadata else {}, e.created_at or now)
                for e in events]
        with translate_errors():
            conn = self._conn
            current, base_id = conn.execute(_HEAD, (aggregate_id,)).fetchone()
            if expected_version is not None and expected_version != current:
                raise ConcurrencyError(aggregate_id, expected_version, current)
            params = [
                (e.uuid, aggregate_id, e.type, _dump(body), current + i,
                 created.isoformat(timespec="microseconds"), e.correlation_id, e.causation_id,
                 _dump(meta) if meta else None)
                for i, (e, body, meta, created) in enumerate(rows, start=1)
            ]
            if len(params) == 1:
                conn.execute(_INSERT, params[0])
            else:
                conn.executemany(_INSERT, params)
        self.appended = True
        return [
            type(e)._trusted((base_id + i, e.uuid, aggregate_id, e.type, body, current + i,
                              created, e.correlation_id, e.causation_id, meta))
            for i, (e, body, meta, created) in enumerate(rows, start=1)
        ]


class _Write:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` around one :class:`SqliteTransaction`."""

    __slots__ = ("conn", "store", "tx")

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    def __enter__(self) -> SqliteTransaction:
        conn = self.store._conn()
        if conn.in_transaction:
            raise StoreError("a transaction is already open on this thread's connection")
        with translate_errors():
            conn.execute("BEGIN IMMEDIATE")
        self.conn = conn
        self.tx = SqliteTransaction(self.store.encoder, conn)
        return self.tx

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> Literal[False]:
        conn = self.conn
        if exc is not None:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return False
        with translate_errors():
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        if self.tx.appended:
            with self.store._appended:
                self.store._appended.notify_all()
        return False


class SqliteStore(EventStore):
    """An event store in one SQLite file (``sqlite:///path/to/file.db``)."""

    dialect = "sqlite"

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
        if not self.path.parent.exists():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreUnavailableError(
                    f"cannot create the folder for SQLite database {self.path}: {e.strerror}"
                ) from e
        with translate_errors():
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
        self._local.conn = conn
        with self._conns_lock:
            self._all_conns.append(conn)
        return conn

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
        return _Write(self)

    # -- reading -------------------------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with translate_errors():
            return self._conn().execute(sql, params).fetchall()

    def _decode(self, rows: list[tuple[Any, ...]]) -> list[Event]:
        # Rows are already in event field order; body, metadata and created_at stay text
        # until an event's reader asks for them.
        return self.registry.decode_many(rows)

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
        agg = _aggregate_key(aggregate_id)
        return self._decode(self._query(
            f"SELECT {_COLUMNS} FROM events WHERE aggregate_id = ? AND version >= ? "
            "ORDER BY version",
            (agg, from_version),
        ))

    def aggregate_version(self, aggregate_id: Any) -> int:
        agg = _aggregate_key(aggregate_id)
        return int(self._query(
            "SELECT COALESCE(MAX(version), 0) FROM events WHERE aggregate_id = ?", (agg,)
        )[0][0])

    def latest_position(self, *, types: Collection[str] | None = None) -> int:
        if types is None:
            return int(self._query("SELECT COALESCE(MAX(id), 0) FROM events")[0][0])
        type_list = list(types)
        if not type_list:
            return 0
        # One index probe per type on (type, id), rather than a scan.
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

    def existing_uuids(self, uuids: Collection[str]) -> set[str]:
        found: set[str] = set()
        items = [str(u).lower() for u in uuids]
        for start in range(0, len(items), 500):
            chunk = items[start:start + 500]
            rows = self._query(
                f"SELECT uuid FROM events WHERE uuid IN ({', '.join('?' for _ in chunk)})", chunk
            )
            found.update(r[0] for r in rows)
        return found

    def wait(self, position: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self.latest_position() > position:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._appended:
                self._appended.wait(min(self.poll_interval, remaining))


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
