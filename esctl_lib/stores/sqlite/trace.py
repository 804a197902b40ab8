"""Reads by causation and correlation (``esctl trace``) on SQLite, on the indexes
``events_correlation_id`` and ``events_causation_id`` (and the uuid's unique index).

Every uuid bound here goes through :func:`_keys`, the one place that says how a uuid is
compared with the stored column.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from esctl_lib.events import Event
from esctl_lib.stores.base import event_ids, lower_uuids
from esctl_lib.stores.sqlite.errors import translate_errors
from esctl_lib.stores.sqlite.uuids import compact, to_blob

if TYPE_CHECKING:
    from esctl_lib.stores.sqlite.store import SqliteStore

#: Bound values per statement (SQLite's default limit is 32766; stay well below).
_CHUNK = 500


def _keys(store: SqliteStore, uuids: Collection[str]) -> list[Any]:
    """Canonical uuids as bound against the stored uuid columns: 16 bytes since schema 3,
    text on a store not yet upgraded (:mod:`esctl_lib.stores.sqlite.uuids`)."""
    valid = lower_uuids(uuids)
    with translate_errors():
        lean = compact(store._conn())
    return [to_blob(u) for u in valid] if lean else list(valid)


def find_events(store: SqliteStore, columns: str, ids: Collection[int],
                uuids: Collection[str]) -> list[Event]:
    """Events with these ids or uuids, in id order."""
    rows: dict[int, tuple[Any, ...]] = {}
    for column, values in (("id", event_ids(ids)),
                           ("uuid", _keys(store, uuids))):
        for chunk in _chunks(values):
            marks = ", ".join("?" for _ in chunk)
            for row in store._query(
                    f"SELECT {columns} FROM events WHERE {column} IN ({marks})", chunk):
                rows[row[0]] = row
    return store._decode([rows[i] for i in sorted(rows)])


def by_correlation(store: SqliteStore, columns: str, correlation_id: str, after: int,
                   limit: int) -> list[Event]:
    """Events with this correlation id after id ``after``, in id order, at most ``limit``."""
    wanted = _keys(store, [correlation_id])
    if not wanted:
        return []
    return store._decode(store._query(
        f"SELECT {columns} FROM events WHERE correlation_id = ? AND id > ? "
        "ORDER BY id LIMIT ?", (wanted[0], after, limit)))


def caused_by(store: SqliteStore, columns: str, uuids: Collection[str], after: int,
              limit: int) -> list[Event]:
    """Events caused by any of ``uuids`` after id ``after``, in id order, at most ``limit``."""
    keys = _keys(store, uuids)
    rows: list[tuple[Any, ...]] = []
    for chunk in _chunks(keys):
        marks = ", ".join("?" for _ in chunk)
        rows.extend(store._query(
            f"SELECT {columns} FROM events WHERE causation_id IN ({marks}) AND id > ? "
            "ORDER BY id LIMIT ?", (*chunk, after, limit)))
    rows.sort(key=lambda r: int(r[0]))
    return store._decode(rows[:limit])


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[i:i + _CHUNK] for i in range(0, len(values), _CHUNK)]
