"""PostgreSQL pieces shared by the store: error translation, SQL text, appends, row decoding.

Every statement here uses unqualified table names: each pooled connection has its
``search_path`` set to the store's schema. Anything composed from identifiers goes
through :mod:`psycopg.sql`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

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
from esctl_lib.events import Event, EventRegistry, utc_now
from esctl_lib.serialization import BodyEncoder
from esctl_lib.stores.base import Transaction, check_expected_version, check_one_aggregate

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


# One statement, one round trip: reads the aggregate's version and inserts the batch (given
# as one JSON array) only when it matches. An empty result means "version mismatch"; a
# concurrent writer that read the same version loses on the (aggregate_id, version) key.
APPEND = """
WITH cur AS (SELECT coalesce(max(version), 0) AS v FROM events WHERE aggregate_id = %(a)s)
INSERT INTO events (uuid, aggregate_id, type, body, version, created_at,
                    correlation_id, causation_id, metadata)
SELECT (r->>0)::uuid, %(a)s, r->>1, r->2, cur.v + x.n, (r->>3)::timestamptz,
       (r->>4)::uuid, (r->>5)::uuid, nullif(r->6, 'null'::jsonb)
FROM cur, jsonb_array_elements(%(j)s::jsonb) WITH ORDINALITY AS x(r, n)
WHERE cur.v = %(e)s::integer
ORDER BY x.n
RETURNING id, version, tx::text
"""
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


@contextmanager
def translate_errors(on_unique: UniqueHandler | None = None) -> Iterator[None]:
    """Turn psycopg errors into the library's errors: the one place that does it.

    ``on_unique`` may build the error for a unique violation (given the constraint name).
    """
    try:
        yield
    except pg_errors.UniqueViolation as e:
        constraint = e.diag.constraint_name
        built = on_unique(constraint) if on_unique is not None else None
        if built is not None:
            raise built from e
        if constraint == UUID_CONSTRAINT:
            raise DuplicateEventError() from e
        if constraint == VERSION_CONSTRAINT:
            raise StoreError(f"a concurrent append took this aggregate version: {_first(e)}") from e
        raise StoreError(f"PostgreSQL unique violation: {_first(e)}") from e
    except (pg_errors.UndefinedTable, pg_errors.InvalidSchemaName) as e:
        raise SchemaError(f"the store is not set up ({_first(e)}); run `esctl setup`") from e
    except pg_errors.UndefinedFunction as e:
        raise StoreError(f"PostgreSQL error: {_first(e)}") from e
    except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as e:
        raise StoreUnavailableError(f"PostgreSQL unavailable: {_first(e)}") from e
    except psycopg.Error as e:
        raise StoreError(f"PostgreSQL error: {_first(e)}") from e


def _first(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# -- encoding and decoding -------------------------------------------------------------------
class Batch:
    """An append's events encoded once: one JSON array, plus what is needed to answer."""

    __slots__ = ("aggregate_id", "classes", "json", "rows")

    def __init__(self, events: Sequence[Event], encoder: BodyEncoder) -> None:
        self.aggregate_id = check_one_aggregate(events)
        now = utc_now()
        rows: list[list[Any]] = []
        for event in events:
            rows.append([
                event.uuid, event.type, encoder.encode_body(event.body),
                event.created_at or now, event.correlation_id, event.causation_id,
                encoder.encode_body(event.metadata) if event.metadata else None,
            ])
        self.rows = rows
        self.classes = [type(e) for e in events]
        self.json = json.dumps(
            [[r[0], r[1], r[2], r[3].isoformat(), r[4], r[5], r[6]] for r in rows],
            separators=(",", ":"), ensure_ascii=False,
        )

    def stored(self, ids: Sequence[int], first_version: int) -> list[Event]:
        """The appended events as a read would return them."""
        out = []
        for i, (row, cls, id_) in enumerate(zip(self.rows, self.classes, ids, strict=True)):
            uuid, type_, body, created, corr, caus, meta = row
            out.append(cls._trusted((id_, uuid, self.aggregate_id, type_, body, first_version + i,
                                     created, corr, caus, meta or {})))
        return out


def decode_rows(registry: EventRegistry, rows: Sequence[tuple[Any, ...]]) -> list[Event]:
    """Build events from rows selected with :data:`COLUMNS`."""
    decode = registry.decode
    loads = json.loads
    return [
        decode((i, u, a, t, loads(b), v, c, co, ca, loads(m) if m else {}))
        for (i, u, a, t, b, v, c, co, ca, m) in rows
    ]


# -- appending -------------------------------------------------------------------------------
def append(
    store: PostgresStore,
    conn: psycopg.Connection[Any],
    events: Sequence[Event],
    expected_version: int | None,
    *,
    in_transaction: bool,
) -> tuple[list[Event], int]:
    """Append one aggregate's events on ``conn`` (see ``EventStore.append``); returns them
    and the writing transaction's id.

    Without ``expected_version`` the append reads the current version first and retries
    when a concurrent writer wins; inside a caller's transaction a lost race on the
    (aggregate_id, version) key aborts that transaction, so it raises ConcurrencyError.
    """
    check_expected_version(expected_version)
    batch = Batch(events, store.encoder)
    agg = batch.aggregate_id
    for attempt in range(UNCHECKED_RETRIES + 1):
        base = expected_version
        if base is None:
            base = current_version(conn, agg)
        retry_allowed = expected_version is None and attempt < UNCHECKED_RETRIES
        try:
            with translate_errors(_on_unique(store, None if in_transaction else conn, batch, base)):
                rows = conn.execute(APPEND, {"a": agg, "j": batch.json, "e": base}).fetchall()
        except ConcurrencyError:
            if retry_allowed and not in_transaction:
                continue
            raise
        if rows:
            rows.sort(key=lambda r: r[1])
            return batch.stored([r[0] for r in rows], rows[0][1]), int(rows[0][2])
        if not retry_allowed:
            raise ConcurrencyError(agg, base, current_version(conn, agg))
    raise AssertionError("unreachable")  # pragma: no cover


def current_version(conn: psycopg.Connection[Any], aggregate_id: str) -> int:
    """The aggregate's version as this connection sees it now."""
    with translate_errors():
        row = conn.execute(AGGREGATE_VERSION, (aggregate_id,)).fetchone()
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
        #: The transaction's id once it has appended (None before).
        self.written_tx: int | None = None

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> int:
        with translate_errors():
            return self._conn.execute(sql, params or None).rowcount

    def executemany(self, sql: str, params: Sequence[Sequence[Any] | Mapping[str, Any]]) -> None:
        with translate_errors():
            self._conn.cursor().executemany(sql, params)

    def fetchall(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        with translate_errors():
            return self._conn.execute(sql, params or None).fetchall()

    def _fetch_dicts(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        with translate_errors():
            cur = self._conn.cursor(row_factory=dict_row)
            return cur.execute(sql, params or None).fetchall()

    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        stored, self.written_tx = append(
            self._store, self._conn, events, expected_version, in_transaction=True
        )
        return stored

    def set_tracker(self, name: str, position: int) -> None:
        """Move a tracker forward in stream order (which is not id order on PostgreSQL)."""
        changed = self.execute(SET_TRACKER, {"n": name, "p": position, "u": time.time()})
        if changed == 0:
            raise TrackerError(
                f"tracker {name!r} is past position {position}; reset it to move it back"
            )
