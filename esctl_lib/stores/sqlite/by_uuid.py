"""``read_by_uuids`` on SQLite: events by uuid through the uuid's unique index."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from esctl_lib.events import Event
from esctl_lib.stores.by_uuid import CHUNK, valid_uuids

if TYPE_CHECKING:
    from esctl_lib.stores.sqlite.store import SqliteStore


def read_by_uuids(store: SqliteStore, columns: str, uuids: Collection[str]) -> list[Event]:
    """The stored events with these uuids, in id order."""
    items = valid_uuids(uuids)
    rows = []
    for start in range(0, len(items), CHUNK):
        chunk = items[start:start + CHUNK]
        rows.extend(store._query(
            f"SELECT {columns} FROM events WHERE uuid IN ({', '.join('?' for _ in chunk)})",
            chunk,
        ))
    rows.sort(key=lambda r: int(r[0]))
    return store._decode(rows)
