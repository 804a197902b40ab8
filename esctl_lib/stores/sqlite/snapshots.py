"""Aggregate snapshots in SQLite (schema ``002_snapshots.sql``); the memory store uses
these on its in-memory database too.

A snapshot is a cache of folded state: a store created before schema 2 simply has none
(reads find nothing; writes raise :class:`SchemaError` until ``esctl setup`` upgrades it).
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from esctl_lib.errors import SchemaError
from esctl_lib.events import Event, normalize_uuid
from esctl_lib.stores.base import Snapshot, SnapshotInfo
from esctl_lib.stores.sqlite.errors import translate_errors

if TYPE_CHECKING:
    from esctl_lib.stores.sqlite.store import SqliteStore

_dump = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
# Keeps the newest: replaces a snapshot of an earlier version or of another snapshot_version.
UPSERT = """
INSERT INTO snapshots (aggregate_id, aggregate_type, version, snapshot_version, state,
                       created_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (aggregate_id, aggregate_type) DO UPDATE SET
    version = excluded.version, snapshot_version = excluded.snapshot_version,
    state = excluded.state, created_at = excluded.created_at
WHERE excluded.version > snapshots.version
   OR excluded.snapshot_version <> snapshots.snapshot_version
"""
SELECT = (
    "SELECT version, state, created_at FROM snapshots "
    "WHERE aggregate_id = ? AND aggregate_type = ? AND snapshot_version = ?"
)
# The snapshot (id null, its state in the body column) first, then the events after it, in
# one statement (?4 is the aggregate id in the events table's form: 16 bytes since schema 3,
# while the snapshots table keeps the canonical text): a short history with no snapshot
# costs what reading it alone costs (two statements cost ~4 us more; a CTE with ORDER BY
# over the union, 3x more).
WITH_TAIL = """
SELECT NULL, NULL, NULL, NULL, state, version, created_at, NULL, NULL, NULL FROM snapshots
WHERE aggregate_id = ?1 AND aggregate_type = ?2 AND snapshot_version = ?3
UNION ALL
SELECT * FROM (
    SELECT id, uuid, aggregate_id, type, body, version, created_at, correlation_id,
           causation_id, metadata FROM events
    WHERE aggregate_id = ?4 AND version > coalesce((
        SELECT version FROM snapshots
        WHERE aggregate_id = ?1 AND aggregate_type = ?2 AND snapshot_version = ?3), 0)
    ORDER BY version)
"""
INFOS = (
    "SELECT aggregate_type, count(*), max(created_at), sum(length(CAST(state AS BLOB))) "
    "FROM snapshots GROUP BY aggregate_type ORDER BY aggregate_type"
)


def _missing(e: sqlite3.OperationalError) -> bool:
    return "no such table: snapshots" in str(e)


def save(conn: sqlite3.Connection, snapshot: Snapshot) -> None:
    """Upsert ``snapshot`` on ``conn`` (inside the caller's transaction)."""
    params = (
        normalize_uuid(snapshot.aggregate_id, "aggregate_id"), snapshot.aggregate_type,
        snapshot.version, snapshot.snapshot_version, _dump(snapshot.state),
        snapshot.created_at or time.time(),
    )
    try:
        with translate_errors():
            conn.execute(UPSERT, params)
    except SchemaError as e:
        raise SchemaError(
            "the store's schema has no snapshots table; run `esctl setup` to upgrade it"
        ) from e.__cause__


def load(
    conn: sqlite3.Connection, aggregate_id: str, aggregate_type: str, snapshot_version: int
) -> Snapshot | None:
    """The snapshot of that ``snapshot_version``, or None (also before schema 2)."""
    try:
        with translate_errors():
            row = conn.execute(
                SELECT, (aggregate_id, aggregate_type, snapshot_version)).fetchone()
    except SchemaError as e:
        if isinstance(e.__cause__, sqlite3.OperationalError) and _missing(e.__cause__):
            return None
        raise
    if row is None:
        return None
    return Snapshot(aggregate_id, aggregate_type, int(row[0]), snapshot_version,
                    json.loads(row[1]), float(row[2]))


def infos(conn: sqlite3.Connection) -> list[SnapshotInfo]:
    """Count, newest and bytes per aggregate type (empty before schema 2)."""
    try:
        with translate_errors():
            rows = conn.execute(INFOS).fetchall()
    except SchemaError as e:
        if isinstance(e.__cause__, sqlite3.OperationalError) and _missing(e.__cause__):
            return []
        raise
    return [SnapshotInfo(str(t), int(n), float(newest), int(size or 0))
            for t, n, newest, size in rows]


def drop(conn: sqlite3.Connection, aggregate_type: str | None) -> int:
    """Delete the snapshots of ``aggregate_type`` (all with None) inside the caller's
    transaction; returns how many (0 before schema 2)."""
    try:
        with translate_errors():
            if aggregate_type is None:
                return conn.execute("DELETE FROM snapshots").rowcount
            return conn.execute(
                "DELETE FROM snapshots WHERE aggregate_type = ?", (aggregate_type,)).rowcount
    except SchemaError as e:
        if isinstance(e.__cause__, sqlite3.OperationalError) and _missing(e.__cause__):
            return 0
        raise


def read_from_snapshot(
    store: SqliteStore, aggregate_id: Any, aggregate_type: str, snapshot_version: int,
    tail: bool,
) -> tuple[Snapshot | None, list[Event]]:
    """The snapshot and the events after it, in one statement."""
    agg = normalize_uuid(aggregate_id, "aggregate_id")
    conn = store._conn()
    if not tail:
        return load(conn, agg, aggregate_type, snapshot_version), []
    try:
        with translate_errors():
            rows = conn.execute(WITH_TAIL, (agg, aggregate_type, snapshot_version,
                                            store._key(agg))).fetchall()
    except SchemaError as e:
        if isinstance(e.__cause__, sqlite3.OperationalError) and _missing(e.__cause__):
            return None, store.read_aggregate(agg)  # before schema 2: no snapshots
        raise
    if rows and rows[-1][5] - rows[0][5] != len(rows) - 1:  # never seen: order it here
        rows.sort(key=lambda r: (r[0] is not None, r[5]))
    if not rows or rows[0][0] is not None:
        return None, store._decode(rows)
    first = rows[0]
    snapshot = Snapshot(agg, aggregate_type, int(first[5]), snapshot_version,
                        json.loads(first[4]), float(first[6]))
    return snapshot, store._decode(rows[1:])
