"""SQLite: :meth:`EventStore.estimate_count` through the ``(type, id)`` index or the
primary key, one bounded range scan per type (see :mod:`esctl_lib.stores.estimates`)."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from esctl_lib.stores.base import CountEstimate
from esctl_lib.stores.estimates import combine

if TYPE_CHECKING:
    from esctl_lib.stores.sqlite.store import SqliteStore

_ALL = ("SELECT count(*), max(id) FROM (SELECT id FROM events WHERE id > ? "
        "ORDER BY id LIMIT ?)")
_ONE_TYPE = ("SELECT count(*), max(id) FROM (SELECT id FROM events WHERE type = ? AND id > ? "
             "ORDER BY id LIMIT ?)")


def estimate_count(store: SqliteStore, after: int, types: Collection[str] | None,
                   exact_up_to: int) -> CountEstimate:
    """Events after ``after`` (of ``types``): exact up to ``exact_up_to``, else estimated."""
    probe = exact_up_to + 1
    if types is None:
        rows = [store._query(_ALL, (after, probe))[0]]
    else:
        rows = [store._query(_ONE_TYPE, (t, after, probe))[0] for t in sorted(set(types))]
    samples = [(int(n), None if last is None else int(last)) for n, last in rows]
    if all(n <= exact_up_to for n, _ in samples):
        return CountEstimate(sum(n for n, _ in samples), True)
    return combine(samples, after=after, head=store.latest_position(), limit=exact_up_to)
