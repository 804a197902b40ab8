"""Appends on PostgreSQL: one statement and one round trip per append.

Every append holds the store's append lock (``horizon.py``): an autocommit append takes it
in the same statement, a transaction once, before its first write.

The aggregate's version is read and the events are inserted only if it matches (one event
as plain parameters, a batch as one JSON array parsed once by the server). A concurrent
writer that read the same version loses on the (aggregate_id, version) key and gets
``ConcurrencyError``, also for two first writes.

When the store object itself saw version ``expected`` as the aggregate's newest, stored
(``KnownHeads``), an autocommit append skips reading the version: events are never
deleted, so that version is there, and the key refuses a version ``expected + 1`` written
by anyone else since. Versions stay contiguous either way; only such a refusal draws an id
from the sequence, as a lost race does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg

from esctl_lib.errors import ConcurrencyError, DuplicateEventError, EsctlError
from esctl_lib.events import Event, EventField, utc_now
from esctl_lib.serialization import BodyEncoder
from esctl_lib.stores.base import check_expected_version, check_one_aggregate
from esctl_lib.stores.encoding import dump_checked
from esctl_lib.stores.postgres.errors import (
    UUID_CONSTRAINT,
    VERSION_CONSTRAINT,
    TranslateErrors,
    UniqueHandler,
    translate_errors,
)
from esctl_lib.stores.postgres.pool import cursor
from esctl_lib.stores.postgres.prepared import first_column

if TYPE_CHECKING:
    from esctl_lib.stores.postgres.store import PostgresStore

#: How often an append without ``expected_version`` is retried after losing a race.
UNCHECKED_RETRIES = 5

# One statement, one round trip: read the aggregate's version and insert only when it
# matches. No row back means "version mismatch"; a concurrent writer that read the same
# version loses on the (aggregate_id, version) key. One event goes as plain parameters,
# a batch as one JSON array (one parameter, parsed once by the server).
_VERSION = "(SELECT coalesce(max(version), 0) AS v FROM events WHERE aggregate_id = %s) AS cur"
_INSERT = (
    "INSERT INTO events (uuid, aggregate_id, type, body, version, created_at, "
    "correlation_id, causation_id, metadata) "
)
_ONE_ROW = "SELECT %s, %s, %s, %s::json, %s, %s, %s, %s, %s::json "
APPEND_ONE = _INSERT + _ONE_ROW + f"FROM {_VERSION} WHERE cur.v = %s RETURNING id"
# A batch's rows from its JSON array, at versions {base} + 1, 2, …; a row's created_at is
# null when it is the batch's own time (the parameter after the aggregate id).
_MANY_ROWS = (
    "SELECT (r->>0)::uuid, %s, r->>1, r->2, {base} + x.n, "
    "coalesce((r->>3)::timestamptz, %s::timestamptz), "
    "(r->>4)::uuid, (r->>5)::uuid, (r->>6)::json "
)
_ELEMENTS = "json_array_elements(%s::json) WITH ORDINALITY AS x(r, n)"
APPEND_MANY = (_INSERT + _MANY_ROWS.format(base="cur.v")
               + f"FROM {_VERSION}, {_ELEMENTS} WHERE cur.v = %s ORDER BY x.n RETURNING id")
#: An autocommit append takes the store's append lock (``horizon.py``) in its own statement,
#: before the insert produces a row and so before the transaction has an id.
LOCKED = "WITH lk AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(%s) AS l) "
LOCKED_ONE = LOCKED + APPEND_ONE.replace(f"FROM {_VERSION}", f"FROM lk, {_VERSION}")
LOCKED_MANY = LOCKED + APPEND_MANY.replace(f"FROM {_VERSION},", f"FROM lk, {_VERSION},")
#: The locked appends at a version known to be stored and the newest (``KnownHeads``):
#: no version read; the (aggregate_id, version) key refuses a version written since.
KNOWN_ONE = LOCKED + _INSERT + _ONE_ROW + "FROM lk RETURNING id"
KNOWN_MANY = (LOCKED + _INSERT + _MANY_ROWS.format(base="%s::int")
              + f"FROM lk, {_ELEMENTS} ORDER BY x.n RETURNING id")


def _notifying(locked: str) -> str:
    """A locked append that also NOTIFYs the channel (last parameter) when it inserts: its
    insert becomes a CTE beside the lock's, and the uncorrelated subquery is an InitPlan,
    run once, at the first row, so an append that inserts nothing (a version mismatch)
    notifies nothing."""
    assert locked.startswith(LOCKED)
    return (f"{LOCKED.rstrip()}, ins AS ({locked.removeprefix(LOCKED)}) "
            "SELECT ins.id, (SELECT pg_notify(%s, '')) FROM ins")


#: The locked appends that notify in their own statement (``listen.CommitNotify``).
NOTIFYING_ONE = _notifying(LOCKED_ONE)
NOTIFYING_MANY = _notifying(LOCKED_MANY)
NOTIFYING_KNOWN_ONE = _notifying(KNOWN_ONE)
NOTIFYING_KNOWN_MANY = _notifying(KNOWN_MANY)
AGGREGATE_VERSION = (
    "SELECT coalesce(max(version), 0) FROM events WHERE aggregate_id = %s"
)
_UUID, _TYPE, _CREATED_AT = EventField.UUID, EventField.TYPE, EventField.CREATED_AT
_CORRELATION, _CAUSATION = EventField.CORRELATION_ID, EventField.CAUSATION_ID
# A batch row's type name: the C encoder.
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _quoted(text: str | None) -> str:
    """A JSON string (or null) of text with nothing to escape: a canonical uuid, a time."""
    return "null" if text is None else f'"{text}"'


class Batch:
    """An append's events, checked and dumped to JSON text once (bodies through the
    store's BodyEncoder; a typed body's checked dump is used as it is)."""

    __slots__ = ("aggregate_id", "classes", "now", "rows")

    def __init__(self, events: Sequence[Event], encoder: BodyEncoder) -> None:
        if len(events) == 1 and isinstance(events[0], Event):
            self.aggregate_id = events[0].aggregate_id  # canonical: Event normalizes it
        else:
            self.aggregate_id = check_one_aggregate(events)
        self.now = now = utc_now()
        encode = encoder.encode_body
        rows = []
        for e in events:  # check and dump everything before anything is sent
            body, meta = dump_checked(e, encode)
            f = e._f  # the fields as stored (the properties cost ~0.1 µs each)
            rows.append((f[_UUID], f[_TYPE], body,
                         now if f[_CREATED_AT] is None else (e.created_at or now),
                         f[_CORRELATION], f[_CAUSATION], meta))
        self.rows = rows
        self.classes = [e.__class__ for e in events]

    def statement(self, base: int, lock: int | None = None, notify: str | None = None,
                  known: bool = False) -> tuple[str, tuple[Any, ...]]:
        """The append statement and its parameters, for an aggregate at version ``base``;
        with ``lock``, the statement first takes the append lock of that key, and with
        ``notify`` as well, it also notifies that channel when it inserts. ``known`` (with
        ``lock``): version ``base`` is known to be stored, so the version is not read."""
        if len(self.rows) == 1:
            uuid, type_, body, created, corr, caus, meta = self.rows[0]
            params: tuple[Any, ...] = (
                uuid, self.aggregate_id, type_, body, base + 1, created, corr, caus, meta)
            if known and lock is not None:
                if notify is not None:
                    return NOTIFYING_KNOWN_ONE, (lock, *params, notify)
                return KNOWN_ONE, (lock, *params)
            params = (*params, self.aggregate_id, base)
            if lock is None:
                return APPEND_ONE, params
            if notify is not None:
                return NOTIFYING_ONE, (lock, *params, notify)
            return LOCKED_ONE, (lock, *params)
        now = self.now
        # One JSON array of rows; each body (and metadata) is spliced in as the JSON text
        # it already is, so nothing is decoded or dumped twice. Uuids are canonical and
        # times ISO 8601 (nothing to escape in either); the type name goes through the
        # encoder. (Calling the encoder for every field cost ~2.5 us a row.)
        doc = "[" + ",".join([
            f'["{u}",{_dumps(t)},{b},{"null" if c is now else _quoted(c.isoformat())},'
            f'{_quoted(co)},{_quoted(ca)},{"null" if m is None else m}]'
            for u, t, b, c, co, ca, m in self.rows]) + "]"
        if lock is None:
            return APPEND_MANY, (self.aggregate_id, now, self.aggregate_id, doc, base)
        if known:
            if notify is not None:
                return NOTIFYING_KNOWN_MANY, (lock, self.aggregate_id, base, now, doc, notify)
            return KNOWN_MANY, (lock, self.aggregate_id, base, now, doc)
        params = (lock, self.aggregate_id, now, self.aggregate_id, doc, base)
        if notify is not None:
            return NOTIFYING_MANY, (*params, notify)
        return LOCKED_MANY, params

    def stored(self, ids: Sequence[int], first_version: int) -> list[Event]:
        """The appended events as a read would return them (bodies decoded on first use)."""
        agg = self.aggregate_id
        if len(ids) == 1 == len(self.rows):  # the common case, without zip and enumerate
            uuid, type_, body, created, corr, caus, meta = self.rows[0]
            return [self.classes[0].from_stored(ids[0], uuid, agg, type_, body, first_version,
                                                created, corr, caus, meta)]
        return [
            cls.from_stored(id_, uuid, agg, type_, body, first_version + i, created, corr, caus,
                            meta)
            for i, ((uuid, type_, body, created, corr, caus, meta), cls, id_) in enumerate(
                zip(self.rows, self.classes, ids, strict=True))
        ]


def append(
    store: PostgresStore,
    conn: psycopg.Connection[Any],
    events: Sequence[Event],
    expected_version: int | None,
    *,
    in_transaction: bool,
    notify: str | None = None,
) -> list[Event]:
    """Append one aggregate's events on ``conn`` (see ``EventStore.append``); outside a
    transaction, with ``notify``, the append's own statement notifies that channel.

    Without ``expected_version`` the append reads the current version first and retries
    when a concurrent writer wins; inside a caller's transaction a lost race on the
    (aggregate_id, version) key aborts that transaction, so it raises ConcurrencyError.
    """
    check_expected_version(expected_version)
    batch = Batch(events, store.encoder)
    if expected_version is not None:
        return _append_at(store, conn, batch, expected_version, in_transaction, notify)
    for _attempt in range(UNCHECKED_RETRIES):
        try:
            base = current_version(conn, batch.aggregate_id)
            return _append_at(store, conn, batch, base, in_transaction, notify)
        except ConcurrencyError:
            if in_transaction:
                raise
    base = current_version(conn, batch.aggregate_id)
    return _append_at(store, conn, batch, base, in_transaction, notify)


def _append_at(
    store: PostgresStore, conn: psycopg.Connection[Any], batch: Batch, base: int,
    in_transaction: bool, notify: str | None,
) -> list[Event]:
    """One attempt: insert the batch if the aggregate is at version ``base`` (outside a
    transaction, the statement takes the append lock itself; a transaction has taken it).
    Outside a transaction, a version ``base`` that this store object saw as the newest
    is not read again (``known_heads``)."""
    agg, heads = batch.aggregate_id, store.heads
    if in_transaction:  # noted nowhere until the commit, so forgotten
        known = False
        heads.forget(agg)
        query, params = batch.statement(base)
    else:
        known = heads.at(agg, base)
        query, params = batch.statement(base, store.append_key, notify, known)
    try:
        if in_transaction:
            rows = cursor(conn).execute(query, params).fetchall()
        else:  # prepared once per connection, sent through libpq (``prepared.py``)
            rows = first_column(conn, query, params)
    except BaseException:  # the handler is built only when something went wrong
        heads.forget(agg)
        with TranslateErrors(_on_unique(store, None if in_transaction else conn, batch, base,
                                        known)):
            raise
    if not rows:
        actual = current_version(conn, agg)
        if not in_transaction and actual:
            heads.note(agg, actual)  # read on an autocommit connection: committed
        raise ConcurrencyError(agg, base, actual)
    if len(rows) > 1:
        rows.sort()
    if not in_transaction:
        heads.note(agg, base + len(rows))
    return batch.stored([r[0] for r in rows], base + 1)


def current_version(conn: psycopg.Connection[Any], aggregate_id: str) -> int:
    """The aggregate's version as this connection sees it now."""
    with translate_errors():
        row = cursor(conn).execute(AGGREGATE_VERSION, (aggregate_id,)).fetchone()
    return int(row[0]) if row else 0


EXISTING_UUIDS = "SELECT uuid::text FROM events WHERE uuid = ANY(%s::uuid[])"


def existing(conn: psycopg.Connection[Any], uuids: Sequence[str]) -> set[str]:
    """Which of these (valid, lower-case) uuids are stored."""
    with translate_errors():
        return {r[0] for r in conn.execute(EXISTING_UUIDS, (list(uuids),)).fetchall()}


def _on_unique(
    store: PostgresStore, conn: psycopg.Connection[Any] | None, batch: Batch, base: int,
    known: bool = False,
) -> UniqueHandler:
    """Name the conflict, reading on ``conn`` when it is still usable (else on the pool).
    After an append that did not read the version (``known``), a taken uuid is named only
    if the version was right, as when the statement reads it."""

    def build(constraint: str | None) -> EsctlError | None:
        agg = batch.aggregate_id
        if constraint == VERSION_CONSTRAINT or (known and constraint == UUID_CONSTRAINT):
            actual = current_version(conn, agg) if conn else store.aggregate_version(agg)
            if constraint == VERSION_CONSTRAINT or actual != base:
                return ConcurrencyError(agg, base, actual)
        if constraint == UUID_CONSTRAINT:
            uuids = [r[0] for r in batch.rows]
            taken = store.existing_uuids(uuids) if conn is None else existing(conn, uuids)
            return DuplicateEventError(min(taken) if taken else None)
        return None

    return build


