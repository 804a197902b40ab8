"""Aggregate snapshots on PostgreSQL (schema ``002_snapshots.sql``).

A load reads the events after the newest snapshot's version first, in one statement; only
when they do not start at version 1 (a snapshot was used, or there are none) does a second
one fetch the snapshot's state. So a short history, which has no snapshot yet, costs what
a load without snapshots costs (a statement that also carried the snapshot row cost about
20 µs more), and a long one a second round trip.
A snapshot is a cache of folded state: a store created before schema 2 simply has none
(reads find nothing; writes raise :class:`SchemaError` until ``esctl setup`` upgrades it).
Written outside a transaction, a snapshot is one autocommit upsert; inside one, it sits
in a savepoint, so that a failed write leaves the caller's transaction usable.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import psycopg

from esctl_lib.errors import EsctlError, SchemaError
from esctl_lib.events import Event, normalize_uuid
from esctl_lib.stores.base import Snapshot, SnapshotInfo
from esctl_lib.stores.postgres.decode import decode_rows
from esctl_lib.stores.postgres.errors import DRIVER_ERRORS, is_undefined_table, translate
from esctl_lib.stores.postgres.pool import cursor
from esctl_lib.stores.postgres.stream import COLUMNS

if TYPE_CHECKING:
    from esctl_lib.stores.postgres.store import PostgresStore

_dump = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
UPSERT = """
INSERT INTO snapshots (aggregate_id, aggregate_type, version, snapshot_version, state,
                       created_at)
VALUES (%s, %s, %s, %s, %s::jsonb, %s)
ON CONFLICT (aggregate_id, aggregate_type) DO UPDATE SET
    version = excluded.version, snapshot_version = excluded.snapshot_version,
    state = excluded.state, created_at = excluded.created_at
WHERE excluded.version > snapshots.version
   OR excluded.snapshot_version <> snapshots.snapshot_version
"""
_WHERE = "aggregate_id = %(a)s AND aggregate_type = %(t)s AND snapshot_version = %(v)s"
_SNAPSHOT = f"SELECT version, state::text AS state, created_at FROM snapshots WHERE {_WHERE}"
# The events after the snapshot's version (all of them without a snapshot), in order.
AFTER_SNAPSHOT = (
    f"SELECT {COLUMNS} FROM events WHERE aggregate_id = %(a)s AND version > "
    f"coalesce((SELECT version FROM snapshots WHERE {_WHERE}), 0) ORDER BY version"
)
_VERSION = 5  # the version column of COLUMNS
INFOS = (
    "SELECT aggregate_type, count(*), max(created_at), sum(pg_column_size(state)) "
    "FROM snapshots GROUP BY aggregate_type ORDER BY aggregate_type"
)


def _params(snapshot: Snapshot) -> tuple[Any, ...]:
    return (normalize_uuid(snapshot.aggregate_id, "aggregate_id"), snapshot.aggregate_type,
            snapshot.version, snapshot.snapshot_version, _dump(snapshot.state),
            snapshot.created_at or time.time())


def _no_table(e: BaseException) -> EsctlError:
    if is_undefined_table(e):
        return SchemaError(
            "the store's schema has no snapshots table; run `esctl setup` to upgrade it")
    return translate(e)


def save(store: PostgresStore, snapshot: Snapshot) -> None:
    """One autocommit upsert."""
    params = _params(snapshot)
    with store.connection() as conn:
        try:
            cursor(conn).execute(UPSERT, params)
        except DRIVER_ERRORS as e:
            raise _no_table(e) from e


def save_in(conn: psycopg.Connection[Any], snapshot: Snapshot) -> None:
    """The upsert inside the caller's transaction, in a savepoint of its own."""
    params = _params(snapshot)
    try:
        with conn.transaction():
            cursor(conn).execute(UPSERT, params)
    except DRIVER_ERRORS as e:
        raise _no_table(e) from e


def read_from_snapshot(
    store: PostgresStore, aggregate_id: Any, aggregate_type: str, snapshot_version: int,
    tail: bool,
) -> tuple[Snapshot | None, list[Event]]:
    """The snapshot and the events after it: one round trip when the events start at
    version 1 (no snapshot), else two."""
    agg = normalize_uuid(aggregate_id, "aggregate_id")
    params = {"a": agg, "t": aggregate_type, "v": snapshot_version}
    try:
        with store.connection() as conn:
            cur = cursor(conn)
            if not tail:
                row = cur.execute(_SNAPSHOT, params).fetchone()
                return (None if row is None else _snapshot(agg, aggregate_type,
                                                            snapshot_version, row)), []
            rows = cur.execute(AFTER_SNAPSHOT, params).fetchall()
            if rows and rows[0][_VERSION] == 1:
                return None, decode_rows(store.registry, rows)
            row = cur.execute(_SNAPSHOT, params).fetchone()
            if row is not None and rows and int(row[0]) + 1 < rows[0][_VERSION]:
                row = None  # replaced by an older one meanwhile (never by esctl): no use
            if row is None and rows:  # dropped between the two statements: everything
                rows = cur.execute(AFTER_SNAPSHOT, {**params, "t": None}).fetchall()
    except DRIVER_ERRORS as e:
        if is_undefined_table(e):  # before schema 2: no snapshots (or no store: says so)
            return None, store.read_aggregate(agg) if tail else []
        raise translate(e) from e
    if row is None:
        return None, decode_rows(store.registry, rows)
    snapshot = _snapshot(agg, aggregate_type, snapshot_version, row)
    # a newer snapshot written between the two statements covers some of the rows
    return snapshot, decode_rows(store.registry,
                                 [r for r in rows if r[_VERSION] > snapshot.version])


def _snapshot(agg: str, aggregate_type: str, snapshot_version: int, row: Any) -> Snapshot:
    return Snapshot(agg, aggregate_type, int(row[0]), snapshot_version, json.loads(row[1]),
                    float(row[2]))


def infos(store: PostgresStore) -> list[SnapshotInfo]:
    """Count, newest and bytes per aggregate type (empty before schema 2)."""
    try:
        with store.connection() as conn:
            rows = cursor(conn).execute(INFOS).fetchall()
    except DRIVER_ERRORS as e:
        if is_undefined_table(e):
            return []
        raise translate(e) from e
    return [SnapshotInfo(str(t), int(n), float(newest), int(size or 0))
            for t, n, newest, size in rows]


def drop(store: PostgresStore, aggregate_type: str | None) -> int:
    """Delete the snapshots of ``aggregate_type`` (all with None); 0 before schema 2."""
    try:
        with store.connection() as conn:
            if aggregate_type is None:
                return cursor(conn).execute("DELETE FROM snapshots").rowcount
            return cursor(conn).execute(
                "DELETE FROM snapshots WHERE aggregate_type = %s", (aggregate_type,)).rowcount
    except DRIVER_ERRORS as e:
        if is_undefined_table(e):
            return 0
        raise translate(e) from e
