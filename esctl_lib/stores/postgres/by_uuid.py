"""``read_by_uuids`` on PostgreSQL: the SQL, shared by the sync and the async store.

No reader horizon applies (as for ``read_aggregate``): a committed event is found at once.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from esctl_lib.events import Event
from esctl_lib.stores.by_uuid import valid_uuids
from esctl_lib.stores.postgres.decode import decode_rows
from esctl_lib.stores.postgres.errors import translate_errors
from esctl_lib.stores.postgres.stream import COLUMNS

if TYPE_CHECKING:
    from esctl_lib.stores.postgres.store import PostgresStore

BY_UUIDS = f"SELECT {COLUMNS} FROM events WHERE uuid = ANY(%s::uuid[]) ORDER BY id"


def read_by_uuids(store: PostgresStore, uuids: Collection[str]) -> list[Event]:
    """The stored events with these uuids, in id order."""
    items = valid_uuids(uuids)
    if not items:
        return []
    with store.connection() as conn, translate_errors():
        rows = conn.execute(BY_UUIDS, (items,)).fetchall()
    return decode_rows(store.registry, rows)
