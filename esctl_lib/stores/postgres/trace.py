"""Reads by causation and correlation (``esctl trace``) on PostgreSQL, on the partial
indexes ``events_correlation_id`` and ``events_causation_id`` (and the uuid's unique
index). Committed events in id order; no horizon applies (a trace is a snapshot)."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from esctl_lib.events import Event
from esctl_lib.stores.base import event_ids, lower_uuids
from esctl_lib.stores.postgres.decode import decode_rows
from esctl_lib.stores.postgres.errors import translate_errors
from esctl_lib.stores.postgres.pool import cursor
from esctl_lib.stores.postgres.stream import COLUMNS

if TYPE_CHECKING:
    from esctl_lib.stores.postgres.store import PostgresStore

FIND = (
    f"SELECT {COLUMNS} FROM events WHERE id = ANY(%(ids)s::bigint[]) "
    f"UNION SELECT {COLUMNS} FROM events WHERE uuid = ANY(%(uuids)s::uuid[]) ORDER BY 1"
)
BY_UUIDS = f"SELECT {COLUMNS} FROM events WHERE uuid = ANY(%s::uuid[]) ORDER BY id"
BY_CORRELATION = (
    f"SELECT {COLUMNS} FROM events WHERE correlation_id = %(c)s::uuid AND id > %(after)s "
    "ORDER BY id LIMIT %(n)s"
)
CAUSED_BY = (
    f"SELECT {COLUMNS} FROM events WHERE causation_id = ANY(%(uuids)s::uuid[]) "
    "AND id > %(after)s ORDER BY id LIMIT %(n)s"
)


def _rows(store: PostgresStore, query: str, params: dict[str, Any]) -> list[Any]:
    with store.connection() as conn, translate_errors():
        return cursor(conn).execute(query, params).fetchall()


def find_events(store: PostgresStore, ids: Collection[int],
                uuids: Collection[str]) -> list[Event]:
    """Events with these ids or uuids, in id order."""
    keys = lower_uuids(uuids)
    id_list = event_ids(ids)
    if not keys and not id_list:
        return []
    return decode_rows(store.registry, _rows(store, FIND, {"ids": id_list, "uuids": keys}))


def by_correlation(store: PostgresStore, correlation_id: str, after: int,
                   limit: int) -> list[Event]:
    """Events with this correlation id after id ``after``, in id order, at most ``limit``."""
    wanted = lower_uuids([correlation_id])
    if not wanted:
        return []
    rows = _rows(store, BY_CORRELATION, {"c": wanted[0], "after": after, "n": limit})
    return decode_rows(store.registry, rows)


def caused_by(store: PostgresStore, uuids: Collection[str], after: int,
              limit: int) -> list[Event]:
    """Events caused by any of ``uuids`` after id ``after``, in id order, at most ``limit``."""
    keys = lower_uuids(uuids)
    if not keys:
        return []
    rows = _rows(store, CAUSED_BY, {"uuids": keys, "after": after, "n": limit})
    return decode_rows(store.registry, rows)
