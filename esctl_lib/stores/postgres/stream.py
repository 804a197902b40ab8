"""Stream order on PostgreSQL as SQL: the columns read, the readable horizon, stream keys.

The stream is ordered by ``(tx, id)``; a position (an event id) is turned into its key.
Shared by the reads and by tracker moves.
"""

from __future__ import annotations

#: Columns read back as text where that decodes fastest (uuids, JSON): see ``decode_rows``.
COLUMNS = (
    "id, uuid::text, aggregate_id::text, type, body::text, version, created_at, "
    "correlation_id::text, causation_id::text, metadata::text"
)
#: The oldest transaction still in progress: every event below it is final (the cheap
#: bound; reads use ``horizon.BOUND``, never worse than this).
HORIZON = "pg_snapshot_xmin(pg_current_snapshot())"


def key_of(param: str) -> str:
    """SQL for the stream key ``(tx, id)`` of position ``%(param)s``: the greatest event id
    at or below it, or ``('0', 0)`` (before everything) when there is none."""
    probe = f"FROM events k WHERE k.id <= %({param})s ORDER BY k.id DESC LIMIT 1"
    return (
        f"(coalesce((SELECT k.tx {probe}), '0'::xid8), coalesce((SELECT k.id {probe}), 0))"
    )
