"""PostgreSQL pieces shared by the store: error translation, SQL text, appends, row decoding.

Every statement here uses unqualified table names: each pooled connection has its
``search_path`` set to the store's schema. Anything composed from identifiers goes
through :mod:`psycopg.sql`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import PoolTimeout

from esctl_lib.errors import (
    ConcurrencyError,
    DuplicateEventError,
    EsctlError,
    SchemaError,
    StoreError,
    StoreUnavailableError,
    TrackerError,
)
from esctl_lib.events import Event, utc_now
from esctl_lib.serialization import BodyEncoder
from esctl_lib.stores.base import Transaction, check_expected_version, check_one_aggregate
from esctl_lib.stores.postgres_decode import make_event
from esctl_lib.stores.postgres_pipeline import execute_many

if TYPE_CHECKING:
    from esctl_lib.stores.postgres import PostgresStore

UUID_CONSTRAINT = "events_uuid_key"
VERSION_CONSTRAINT = "events_aggregate_version_key"
#: How often an append without ``expected_version`` is retried after losing a race.
UNCHECKED_RETRIES = 5

# -- SQL -------------------------------------------------------------------------------------
#: Columns read back as text where that decodes fastest (uuids, JSON): see ``decode_rows``.
COLUMNS = (
    "id, uuid::text, aggregate_id::text, type, body::text, version, created_at, "
    "correlation_id::text, causation_id::text, metadata::text"
)
#: The oldest transaction still in progress: every event below it is final.
HORIZON = "pg_snapshot_xmin(pg_current_snapshot())"


def key_of(param: str) -> str:
    """SQL for the stream key ``(tx, id)`` of position ``%(param)s``: the greatest event id
    at or below it, or ``('0', 0)`` (before everything) when there is none."""
    probe = f"FROM events k WHERE k.id <= %({param})s ORDER BY k.id DESC LIMIT 1"
    return (
        f"(coalesce((SELECT k.tx {probe}), '0'::xid8), coalesce((SELECT k.id {probe}), 0))"
    )


# One statement, one round trip: read the aggregate's version and insert only when it
# matches. No row back means "version mismatch"; a concurrent writer that read the same
# version loses on the (aggregate_id, version) key. One event goes as plain parameters,
# a batch as one JSON array (one parameter, parsed once by the server).
_VERSION = "(SELECT coalesce(max(version), 0) AS v FROM events WHERE aggregate_id = %s) AS cur"
_INSERT = (
    "INSERT INTO events (uuid, aggregate_id, type, body, version, created_at, "
    "correlation_id, causation_id, metadata) "
)
APPEND_ONE = (
    _INSERT + "SELECT %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s::jsonb "
    f"FROM {_VERSION} WHERE cur.v = %s RETURNING id"
)
APPEND_MANY = (  # a row's created_at is null when it is the batch's own time (2nd parameter)
    _INSERT + "SELECT (r->>0)::uuid, %s, r->>1, r->2, cur.v + x.n, "
    "coalesce((r->>3)::timestamptz, %s::timestamptz), "
    "(r->>4)::uuid, (r->>5)::uuid, nullif(r->6, 'null'::jsonb) "
    f"FROM {_VERSION}, jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS x(r, n) "
    "WHERE cur.v = %s ORDER BY x.n RETURNING id"
)
AGGREGATE_VERSION = (
    "SELECT coalesce(max(version), 0) FROM events WHERE aggregate_id = %s"
)
# Moves a tracker forward in stream order; the row is locked by ON CONFLICT.
SET_TRACKER = f"""
INSERT INTO trackers AS t (name, position, updated_at) VALUES (%(n)s, %(p)s, %(u)s)
ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
WHERE t.position = excluded.position
   OR (coalesce((SELECT k.tx FROM events k WHERE k.id <= t.position ORDER BY k.id DESC LIMIT 1),
                '0'::xid8),
       coalesce((SELECT k.id FROM events k WHERE k.id <= t.position ORDER BY k.id DESC LIMIT 1),
                0))
      <= {key_of("p")}
"""


# -- errors ----------------------------------------------------------------------------------
UniqueHandler = Callable[[str | None], EsctlError | None]


class TranslateErrors:
    """Context manager turning psycopg errors into the library's errors (see translate_errors)."""

    __slots__ = ("on_unique",)

    def __init__(self, on_unique: UniqueHandler | None = None) -> None:
        self.on_unique = on_unique

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> Literal[False]:
        if exc is None or not isinstance(exc, psycopg.Error | PoolTimeout):
            return False
        raise translate(exc, self.on_unique) from exc


def translate_errors(on_unique: UniqueHandler | None = None) -> TranslateErrors:
    """Turn psycopg errors into the library's errors: the one place that does it.

    ``on_unique`` may build the error for a unique violation (given the constraint name).
    """
    return TranslateErrors(on_unique)


def translate(e: BaseException, on_unique: UniqueHandler | None = None) -> EsctlError:
    """The library error for a psycopg (or pool) error."""
    if isinstance(e, pg_errors.UniqueViolation):
        constraint = e.diag.constraint_name
        built = on_unique(constraint) if on_unique is not None else None
        if built is not None:
            return built
        if constraint == UUID_CONSTRAINT:
            return DuplicateEventError()
        if constraint == VERSION_CONSTRAINT:
            return StoreError(f"a concurrent append took this aggregate version: {_first(e)}")
        return StoreError(f"PostgreSQL unique violation: {_first(e)}")
    if isinstance(e, pg_errors.UndefinedTable | pg_errors.InvalidSchemaName):
        return SchemaError(f"the store is not set up ({_first(e)}); run `esctl setup`")
    if isinstance(e, psycopg.OperationalError | psycopg.InterfaceError | PoolTimeout):
        return StoreUnavailableError(f"PostgreSQL unavailable: {_first(e)}")
    return StoreError(f"PostgreSQL error: {_first(e)}")


def cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
    """The connection's reusable cursor (cheaper than a new cursor per statement)."""
    cur: psycopg.Cursor[Any] | None = getattr(conn, "_esctl_cursor", None)
    if cur is None or cur.closed:
        cur = conn.cursor()
        conn._esctl_cursor = cur  # type: ignore[attr-defined]
    return cur


def _first(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# -- appending -------------------------------------------------------------------------------
_dumps = json.dumps  # the default encoder is the fast one; bodies are already JSON-safe


class Batch:
    """An append's events, encoded once (bodies through the store's BodyEncoder)."""

    __slots__ = ("aggregate_id", "classes", "now", "rows")

    def __init__(self, events: Sequence[Event], encoder: BodyEncoder) -> None:
        if len(events) == 1 and isinstance(events[0], Event):
            self.aggregate_id = events[0].aggregate_id  # canonical: Event normalizes it
        else:
            self.aggregate_id = check_one_aggregate(events)
        self.now = now = utc_now()
        encode = encoder.encode_body
        self.rows = [
            (e.uuid, e.type, encode(e.body), e.created_at or now, e.correlation_id,
             e.causation_id, encode(e.metadata) if e.metadata else None)
            for e in events
        ]
        self.classes = [type(e) for e in events]

    def statement(self, base: int) -> tuple[str, tuple[Any, ...]]:
        """The append statement and its parameters, for an aggregate at version ``base``."""
        if len(self.rows) == 1:
            uuid, type_, body, created, corr, caus, meta = self.rows[0]
            return APPEND_ONE, (uuid, self.aggregate_id, type_, _dumps(body), base + 1, created,
                                corr, caus, None if meta is None else _dumps(meta),
                                self.aggregate_id, base)
        now = self.now
        doc = _dumps([(u, t, b, None if c is now else c.isoformat(), co, ca, m)
                      for u, t, b, c, co, ca, m in self.rows])
        return APPEND_MANY, (self.aggregate_id, now, self.aggregate_id, doc, base)

    def stored(self, ids: Sequence[int], first_version: int) -> list[Event]:
        """The appended events as a read would return them."""
        agg = self.aggregate_id
        return [
            make_event(cls, id_, uuid, agg, type_, body, first_version + i, created, corr, caus,
                       meta or {})
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
) -> list[Event]:
    """Append one aggregate's events on ``conn`` (see ``EventStore.append``).

    Without ``expected_version`` the append reads the current version first and retries
    when a concurrent writer wins; inside a caller's transaction a lost race on the
    (aggregate_id, version) key aborts that transaction, so it raises ConcurrencyError.
    """
    check_expected_version(expected_version)
    batch = Batch(events, store.encoder)
    if expected_version is not None:
        return _append_at(store, conn, batch, expected_version, in_transaction)
    for _attempt in range(UNCHECKED_RETRIES):
        try:
            base = current_version(conn, batch.aggregate_id)
            return _append_at(store, conn, batch, base, in_transaction)
        except ConcurrencyError:
            if in_transaction:
                raise
    base = current_version(conn, batch.aggregate_id)
    return _append_at(store, conn, batch, base, in_transaction)


def _append_at(
    store: PostgresStore, conn: psycopg.Connection[Any], batch: Batch, base: int,
    in_transaction: bool,
) -> list[Event]:
    """One attempt: insert the batch if the aggregate is at version ``base``."""
    query, params = batch.statement(base)
    with TranslateErrors(_on_unique(store, None if in_transaction else conn, batch, base)):
        rows = cursor(conn).execute(query, params).fetchall()
    if not rows:
        raise ConcurrencyError(batch.aggregate_id, base,
                               current_version(conn, batch.aggregate_id))
    if len(rows) > 1:
        rows.sort()
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
    store: PostgresStore, conn: psycopg.Connection[Any] | None, batch: Batch, base: int
) -> UniqueHandler:
    """Name the conflict, reading on ``conn`` when it is still usable (else on the pool)."""

    def build(constraint: str | None) -> EsctlError | None:
        agg = batch.aggregate_id
        if constraint == VERSION_CONSTRAINT:
            actual = current_version(conn, agg) if conn else store.aggregate_version(agg)
            return ConcurrencyError(agg, base, actual)
        if constraint == UUID_CONSTRAINT:
            uuids = [r[0] for r in batch.rows]
            taken = store.existing_uuids(uuids) if conn is None else existing(conn, uuids)
            return DuplicateEventError(min(taken) if taken else None)
        return None

    return build


# -- transactions ----------------------------------------------------------------------------
class PostgresTransaction(Transaction):
    """A transaction on one pooled connection (``BEGIN`` … ``COMMIT``)."""

    dialect = "postgresql"
    placeholder = "%s"

    def __init__(self, store: PostgresStore, conn: psycopg.Connection[Any]) -> None:
        self._store = store
        self._conn = conn
        #: The greatest event id this transaction appended (0 when none).
        self.last_id = 0

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> int:
        with translate_errors():
            return cursor(self._conn).execute(sql, params or None).rowcount

    def executemany(self, sql: str, params: Sequence[Sequence[Any] | Mapping[str, Any]]) -> None:
        with translate_errors():
            execute_many(self._conn, sql, params)

    def fetchall(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        with translate_errors():
            return cursor(self._conn).execute(sql, params or None).fetchall()

    def _fetch_dicts(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        with translate_errors():
            cur = self._conn.cursor(row_factory=dict_row)
            return cur.execute(sql, params or None).fetchall()

    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        stored = append(self._store, self._conn, events, expected_version, in_transaction=True)
        last = stored[-1].id
        if last is not None and last > self.last_id:
            self.last_id = last
        return stored

    def set_tracker(self, name: str, position: int) -> None:
        """Move a tracker forward in stream order (which is not id order on PostgreSQL)."""
        changed = self.execute(SET_TRACKER, {"n": name, "p": position, "u": time.time()})
        if changed == 0:
            raise TrackerError(
                f"tracker {name!r} is past position {position}; reset it to move it back"
            )
