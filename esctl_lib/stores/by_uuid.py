"""Reading events by uuid (:meth:`EventStore.read_by_uuids`): the parts backends share."""

from __future__ import annotations

from collections.abc import Collection
from contextlib import suppress
from typing import TYPE_CHECKING

from esctl_lib.errors import InvalidEventError
from esctl_lib.events import Event, EventField, normalize_uuid

if TYPE_CHECKING:
    from esctl_lib.stores.memory import MemoryStore

#: How many uuids one query asks for at most (SQLite's bound-parameter limit is 32766).
CHUNK = 500


def valid_uuids(uuids: Collection[str]) -> list[str]:
    """The canonical form of each uuid given, without duplicates; a non-uuid is dropped
    (it cannot be stored)."""
    out: dict[str, None] = {}
    for u in uuids:
        with suppress(InvalidEventError):
            out[normalize_uuid(u, "uuid")] = None
    return list(out)


def memory_read_by_uuids(store: MemoryStore, uuids: Collection[str]) -> list[Event]:
    """``read_by_uuids`` of the memory store: a scan of its records (a store for tests)."""
    wanted = set(valid_uuids(uuids))
    if not wanted:
        return []
    with store._lock:
        records = [r for r in store._records if r[EventField.UUID] in wanted]
        return store.registry.decode_many(records)
