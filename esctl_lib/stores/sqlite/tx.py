"""SQLite transactions: ``BEGIN IMMEDIATE`` … ``COMMIT`` on one connection, and appends."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from esctl_lib.errors import (
    ConcurrencyError,
    DuplicateEventError,
    StoreError,
    StoreUnavailableError,
)
from esctl_lib.events import Event, EventField, utc_stamp
from esctl_lib.files import FILE_MODE
from esctl_lib.serialization import BodyEncoder
from esctl_lib.stores.base import Snapshot, check_expected_version, check_one_aggregate
from esctl_lib.stores.encoding import dump_checked
from esctl_lib.stores.sql import SqlTrackers
from esctl_lib.stores.sqlite import snapshots
from esctl_lib.stores.sqlite.errors import translate_errors
from esctl_lib.stores.sqlite.uuids import compact, to_blob, to_text

if TYPE_CHECKING:
    from esctl_lib.stores.sqlite.store import SqliteStore

_BARE_COLUMNS = "uuid, aggregate_id, type, body, version, created_at"
_LINK_COLUMNS = "correlation_id, causation_id, metadata"
_INSERT = (f"INSERT INTO events ({_BARE_COLUMNS}, {_LINK_COLUMNS}) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
# Rows with no correlation, causation or metadata (most of them) leave those columns to
# their default NULL instead of binding None: the sqlite3 module looks for an adapter for
# every parameter that is not an exact int, float, str or bytearray, about 0.6 µs per None
# on this machine class (three of them cost more than the rest of a row's insert).
_INSERT_BARE = f"INSERT INTO events ({_BARE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
# The aggregate's version, the greatest id and the schema cookie, in one statement (inside
# BEGIN IMMEDIATE): the cookie tells whether the uuid form cached on the connection still
# holds, so an append is BEGIN, this, the INSERT and COMMIT (no PRAGMA of its own).
_HEAD = (
    "SELECT (SELECT COALESCE(MAX(version), 0) FROM events WHERE aggregate_id = ?), "
    "(SELECT COALESCE(MAX(id), 0) FROM events), "
    "(SELECT schema_version FROM pragma_schema_version)"
)
_UUID, _TYPE, _CREATED_AT = EventField.UUID, EventField.TYPE, EventField.CREATED_AT
_CORRELATION, _CAUSATION = EventField.CORRELATION_ID, EventField.CAUSATION_ID


def _as_is(value: str) -> str:
    return value


def created_at(event: Event, stamp: str) -> tuple[dt.datetime | str, str]:
    """The event's time and its stored text: the append's own (``stamp``, from
    :func:`utc_stamp`; the stored event parses it if asked) unless the event carries one."""
    created = event._f[_CREATED_AT]
    if created is None:
        return stamp, stamp
    if created.__class__ is str:  # an event read back, appended again
        created = event.created_at
    return created, created.isoformat(timespec="microseconds")


class SqliteTransaction(SqlTrackers):
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

    def fetch_dicts(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[dict[str, Any]]:
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
        conn = self._conn
        known = getattr(conn, "esctl_format", None)  # (schema cookie, lean) from compact()
        if known is None:
            with translate_errors():
                lean = compact(conn)  # 16-byte uuids (schema 3), or text (a store at schema 1)
        else:
            lean = bool(known[1])
        # Encode and check everything first: a body that cannot be stored fails before any write.
        encode = self._encoder.encode_body
        stamp = utc_stamp()  # most events are stamped now
        rows = []
        bare = True  # no correlation, causation or metadata in any row: _INSERT_BARE
        for e in events:
            body, meta = dump_checked(e, encode)
            f = e._f
            created, text = created_at(e, stamp)
            co, ca = f[_CORRELATION], f[_CAUSATION]
            if bare and (co is not None or ca is not None or meta is not None):
                bare = False
            rows.append((e, f[_UUID], f[_TYPE], body, created, text, co, ca, meta))
        with translate_errors():
            form = to_blob if lean else _as_is
            key = form(aggregate_id)
            current, base_id, cookie = conn.execute(_HEAD, (key,)).fetchone()
            if known is not None and cookie != known[0] and compact(conn) != lean:
                lean = not lean  # upgraded (or rebuilt) under this connection: read again
                form = to_blob if lean else _as_is
                key = form(aggregate_id)
                current, base_id, _ = conn.execute(_HEAD, (key,)).fetchone()
        if expected_version is not None and expected_version != current:
            raise ConcurrencyError(aggregate_id, expected_version, current)
        params: list[tuple[Any, ...]]
        if bare:
            sql = _INSERT_BARE
            params = [(form(u), key, t, body, current + i, text)
                      for i, (_, u, t, body, _c, text, _co, _ca, _m) in enumerate(rows, start=1)]
        else:
            sql = _INSERT
            params = [
                (form(u), key, t, body, current + i, text, None if co is None else form(co),
                 None if ca is None else form(ca), meta)
                for i, (_, u, t, body, _c, text, co, ca, meta) in enumerate(rows, start=1)
            ]
        try:
            with translate_errors():
                if len(params) == 1:
                    conn.execute(sql, params[0])
                else:
                    conn.executemany(sql, params)
        except DuplicateEventError as e:
            raise DuplicateEventError(self._undo(events, key, current, lean)) from e.__cause__
        self.appended = True
        # Bodies and metadata go back as the JSON text just stored, decoded if read.
        return [
            type(e).from_stored(base_id + i, u, aggregate_id, t, body, current + i, created,
                                co, ca, meta)
            for i, (e, u, t, body, created, _t, co, ca, meta) in enumerate(rows, start=1)
        ]

    def _undo(self, events: Sequence[Event], key: str | bytearray, current: int,
              lean: bool) -> str | None:
        """After a duplicate uuid: remove the rows an interrupted ``executemany`` of this
        append already wrote (so the append writes nothing, even if the caller's transaction
        goes on), and return the first of ``events`` whose uuid is stored."""
        uuids = [e.uuid for e in events]
        marks = ", ".join("?" for _ in uuids)
        with translate_errors():
            self._conn.execute("DELETE FROM events WHERE aggregate_id = ? AND version > ?",
                               (key, current))
            rows = self._conn.execute(
                f"SELECT uuid FROM events WHERE uuid IN ({marks})",
                [to_blob(u) for u in uuids] if lean else uuids,
            ).fetchall()
        taken = {to_text(r[0]) for r in rows}
        return next((u for u in uuids if u in taken), None)

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` in this transaction (``stores/sqlite/snapshots.py``)."""
        snapshots.save(self._conn, snapshot)


#: Processes and threads writing one database file take turns on a lock of their own
#: before they write, so a writer waiting for another wakes within a few milliseconds of
#: its end, instead of polling in SQLite's busy handler (which sleeps up to 100 ms a time:
#: four processors sharing reads spent most of their wall time there). The threads of one
#: process queue on a ``threading.Lock``; processes on ``flock`` of a file beside the
#: database (``<db>-writer``, private like the database), polled without blocking (so
#: ``busy_timeout`` still bounds the wait). The file stays open between turns and the
#: turn ends with ``LOCK_UN`` (an open and a close per append cost more than the lock);
#: a file found unlinked is opened again. When it cannot be opened (a read-only folder),
#: processes fall back to SQLite's own busy handler. The lock only makes waiting short:
#: SQLite's write lock is what keeps writers apart.
_WRITERS: dict[object, _Writer] = {}
_WRITERS_GUARD = threading.Lock()
#: How long a writer waiting on another process sleeps between tries: from the first to
#: the second, doubling.
_POLL = (0.0002, 0.002)


class _Writer:
    """The turn-taking lock of one database file (see above)."""

    __slots__ = ("fd", "held", "path", "threads")

    def __init__(self, path: str) -> None:
        self.path = path + "-writer"
        self.threads = threading.Lock()
        self.fd: int | None = None  # open between turns
        self.held = False  # this process holds the flock

    def acquire(self, timeout: float) -> bool:
        deadline = None  # read the clock only when something has to be waited for
        if not self.threads.acquire(False):
            deadline = time.monotonic() + timeout
            if not self.threads.acquire(timeout=timeout):
                return False
        try:
            fd = self._file()
            if fd is None:
                return True  # no file here: SQLite's busy handler alone
            delay = _POLL[0]
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    self.held = True
                    return True
                except BlockingIOError:
                    pass
                except OSError:  # no flock on this file system
                    self._close()
                    return True
                if deadline is None:
                    deadline = time.monotonic() + timeout
                left = deadline - time.monotonic()
                if left <= 0:
                    self.threads.release()
                    return False
                time.sleep(min(delay, left))
                delay = min(delay * 2, _POLL[1])
        except BaseException:
            self.threads.release()
            raise

    def _file(self) -> int | None:
        """The open lock file (opened again when it was unlinked), or None."""
        fd = self.fd
        if fd is not None:
            try:
                if os.fstat(fd).st_nlink:
                    return fd
            except OSError:
                pass
            self._close()
        try:
            fd = self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except OSError:
            return None
        return fd

    def _close(self) -> None:
        fd, self.fd, self.held = self.fd, None, False
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def release(self) -> None:
        fd = self.fd
        try:
            if self.held and fd is not None:
                self.held = False
                try:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                except OSError:
                    self._close()  # closing releases it too
        finally:
            self.threads.release()


def _forget_writers() -> None:
    """In a forked child: the parent's locks (maybe held by its other threads) are not the
    child's. Its copies of the parent's lock files are closed (the flock belongs to the
    open file, which the parent keeps; closing a copy does not release it)."""
    global _WRITERS_GUARD
    for writer in set(_WRITERS.values()):
        if writer.fd is not None:
            with contextlib.suppress(OSError):
                os.close(writer.fd)
    _WRITERS.clear()
    _WRITERS_GUARD = threading.Lock()


os.register_at_fork(after_in_child=_forget_writers)


def _writer_lock(path: object) -> _Writer:
    lock = _WRITERS.get(path)
    if lock is None:
        with _WRITERS_GUARD:
            key = os.path.realpath(os.fspath(path))  # type: ignore[call-overload]
            lock = _WRITERS.get(key)
            if lock is None:
                lock = _WRITERS[key] = _Writer(key)
            _WRITERS[path] = lock
    return lock


def take_turn(store: SqliteStore) -> _Writer:
    """This writer's turn on the store's file (:func:`_writer_lock`), held until its
    ``release``; :class:`StoreUnavailableError` after ``busy_timeout``."""
    lock = _writer_lock(store.path)
    if not lock.acquire(timeout=store.busy_timeout):
        raise StoreUnavailableError(
            "SQLite database is busy: another thread of this process kept its write "
            f"transaction open for {store.busy_timeout:g} s")
    return lock


class Write:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` around one :class:`SqliteTransaction` (the
    threads of one process take turns on :func:`_writer_lock` first)."""

    __slots__ = ("conn", "lock", "store", "tx")

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    def __enter__(self) -> SqliteTransaction:
        conn = self.store._conn()
        if conn.in_transaction:
            raise StoreError("a transaction is already open on this thread's connection")
        lock = take_turn(self.store)
        try:
            with translate_errors():
                conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            lock.release()
            raise
        self.lock = lock
        self.conn = conn
        self.tx = SqliteTransaction(self.store.encoder, conn)
        return self.tx

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> Literal[False]:
        try:
            self._end(exc)
        finally:
            self.lock.release()
        if exc is None and self.tx.appended:
            self.store.notify_appended()
        return False

    def _end(self, exc: BaseException | None) -> None:
        conn = self.conn
        if exc is not None:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return
        with translate_errors():
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise


# One event outside a caller's transaction: one autocommit statement, which takes SQLite's
# write lock as BEGIN IMMEDIATE does and stores the event's version only while the
# aggregate is at the expected version and the connection's uuid form still holds; else
# the version is NULL, which the NOT NULL constraint refuses, and the general path
# (``Write`` + ``append``) decides. The guard sits in a ``CASE`` inside ``VALUES``, not in
# ``INSERT … SELECT … WHERE``: a SELECT that reads the table it inserts into goes through
# a temporary table (SQLite's guard against reading its own inserts), ~8 µs of CPU an
# append. An aggregate found at its expected version (> 0) was found by its key in that
# form, which proves the form (an upgrade converts every row at once); only a first event
# (expected version 0, where no row is found either way) also compares the schema cookie
# the form was read at, a subquery that cost ~10 µs of CPU an append.
_VERSION_IS = "(SELECT COALESCE(MAX(version), 0) FROM events WHERE aggregate_id = ?) = ?"
_COOKIE_IS = "(SELECT schema_version FROM pragma_schema_version) = ?"


def _insert_if(bare: bool, first: bool) -> str:
    """``_INSERT_BARE`` or ``_INSERT`` with the version behind the guard."""
    guard = f"{_VERSION_IS} AND {_COOKIE_IS}" if first else _VERSION_IS
    values = f"?, ?, ?, ?, CASE WHEN {guard} THEN ? END, ?"
    if bare:
        return f"INSERT INTO events ({_BARE_COLUMNS}) VALUES ({values})"
    return f"INSERT INTO events ({_BARE_COLUMNS}, {_LINK_COLUMNS}) VALUES ({values}, ?, ?, ?)"


#: The one-statement append by (bare row? (see _INSERT_BARE), first event?).
_INSERT_IF = {(bare, first): _insert_if(bare, first)
              for bare in (False, True) for first in (False, True)}


def _guard_refused(e: sqlite3.IntegrityError) -> bool:
    """True for the NULL version of a guard that did not hold (see above)."""
    return (getattr(e, "sqlite_errorname", "") == "SQLITE_CONSTRAINT_NOTNULL"
            and "events.version" in str(e))


def append_one(store: SqliteStore, event: Event, expected_version: int) -> Event | None:
    """Append one event at ``expected_version`` in one statement (see above); the stored
    event, or None when the general path must do it: a version or schema that moved, a
    connection that has not learnt its uuid form yet, or a caller's transaction open on it.
    """
    conn = store._conn()
    known = getattr(conn, "esctl_format", None)
    if known is None or conn.in_transaction:
        return None
    cookie, lean = known
    body, meta = dump_checked(event, store.encoder.encode_body)  # before any write
    created, text = created_at(event, utc_stamp())
    f = event._f
    uuid, type_, corr, caus = f[_UUID], f[_TYPE], f[_CORRELATION], f[_CAUSATION]
    aggregate_id = event.aggregate_id
    form = to_blob if lean else _as_is
    key = form(aggregate_id)
    version = expected_version + 1
    lock = take_turn(store)
    try:
        first = expected_version == 0
        guard = (key, expected_version, cookie) if first else (key, expected_version)
        with translate_errors():
            try:
                if corr is None and caus is None and meta is None:
                    cur = conn.execute(_INSERT_IF[True, first],
                                       (form(uuid), key, type_, body, *guard, version, text))
                else:
                    cur = conn.execute(_INSERT_IF[False, first], (
                        form(uuid), key, type_, body, *guard, version, text,
                        None if corr is None else form(corr),
                        None if caus is None else form(caus), meta))
            except sqlite3.IntegrityError as e:
                if _guard_refused(e):
                    return None
                raise
    except DuplicateEventError as e:
        raise DuplicateEventError(uuid) from e.__cause__
    finally:
        lock.release()
    store.notify_appended()
    return type(event).from_stored(cur.lastrowid, uuid, aggregate_id, type_, body, version,
                                   created, corr, caus, meta)
