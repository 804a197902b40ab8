"""SQLite: :meth:`EventStore.estimate_count`, one bounded range scan of the rowid (the
stream order) per type (see :mod:`esctl_lib.stores.estimates`).

Schema 4 has no type index, so a type is a filter on that scan. A rare type's count would
then scan the whole stream after the position, so the scan also stops :func:`scan_cap` ids
after it: a type with fewer events than the bound among them, and more stream beyond, is
estimated from its density there. A store still at schema 3 answers the same query through
its ``(type, id)`` index."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from esctl_lib.stores.base import CountEstimate
from esctl_lib.stores.estimates import combine, extrapolate, scan_cap

if TYPE_CHECKING:
    from esctl_lib.stores.sqlite.store import SqliteStore

_ALL = ("SELECT count(*), max(id) FROM (SELECT id FROM events WHERE id > ? "
        "ORDER BY id LIMIT ?)")
_ONE_TYPE = ("SELECT count(*), max(id) FROM (SELECT id FROM events "
             "WHERE id > ? AND id <= ? AND type = ? ORDER BY id LIMIT ?)")


def estimate_count(store: SqliteStore, after: int, types: Collection[str] | None,
                   exact_up_to: int) -> CountEstimate:
    """Events after ``after`` (of ``types``): exact up to ``exact_up_to``, else estimated."""
    probe = exact_up_to + 1
    if types is None:
        n, last = store._query(_ALL, (after, probe))[0]
        if n <= exact_up_to:
            return CountEstimate(int(n), True)
        return combine([(int(n), int(last))], after=after, head=store.latest_position(),
                       limit=exact_up_to)
    cap = scan_cap(exact_up_to)
    end = after + cap
    head = store.latest_position()
    total, counted, exact = 0, 0, True
    for t in sorted(set(types)):
        n, last = store._query(_ONE_TYPE, (after, end, t, probe))[0]
        seen = int(n)
        counted += seen
        if seen > exact_up_to:  # dense: its density over the ids the sample spans
            total += extrapolate(seen, int(last) - after, after=after, head=head)
            exact = False
        elif head <= end:  # the scan saw the whole stream after the position
            total += seen
        else:  # sparse: its density over the capped scan, over the rest
            total += extrapolate(seen, cap, after=after, head=head)
            exact = False
    return CountEstimate(total, exact, None if exact else counted)
