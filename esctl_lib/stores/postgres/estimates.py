"""PostgreSQL: :meth:`EventStore.estimate_count` in stream order, one bounded range scan
of ``(tx, id)`` per type (the type a filter above the ordered scan, as in ``reads.py``:
schema 3 has no type index), below the readable horizon
(see :mod:`esctl_lib.stores.estimates`).

Without a type index a rare type's count would scan the whole stream after the position,
so the scan also stops after :func:`scan_cap` stream entries: a type with fewer events than
the bound among them, and more stream beyond them, is estimated from its density there."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from esctl_lib.stores.base import CountEstimate
from esctl_lib.stores.estimates import combine, extrapolate, scan_cap
from esctl_lib.stores.postgres.horizon import BEHIND, BOUND

if TYPE_CHECKING:
    from esctl_lib.stores.postgres.store import PostgresStore

# Below the reader horizon (horizon.BOUND, as every read): the server-wide oldest
# transaction alone would count nothing while any session anywhere on the server has one
# open. BEHIND first, so a stale bound is refreshed and the count taken again.
_AFTER = f"(tx, id) > (%(ptx)s::xid8, %(pid)s) AND tx < {BOUND}"
_ALL = (f"SELECT {BEHIND}, count(*), max(id) FROM (SELECT id FROM events WHERE {_AFTER} "
        "ORDER BY tx, id LIMIT %(n)s) AS s")
# The 4th column, only when fewer than n of the type were seen: the id of the first stream
# entry beyond the capped scan (NULL when the scan saw the whole stream).
_ONE_TYPE = (f"SELECT {BEHIND}, count(*), max(id), CASE WHEN count(*) < %(n)s THEN "
             f"(SELECT id FROM events WHERE {_AFTER} ORDER BY tx, id OFFSET %(last)s LIMIT 1) "
             "END FROM (SELECT e.id FROM (SELECT id, tx, type "
             f"FROM events WHERE {_AFTER} ORDER BY tx, id LIMIT %(cap)s) AS e "
             "WHERE e.type = %(t)s ORDER BY e.tx, e.id LIMIT %(n)s) AS s")


def estimate_count(store: PostgresStore, after: int, types: Collection[str] | None,
                   exact_up_to: int) -> CountEstimate:
    """Readable events after ``after`` in stream order (of ``types``): exact up to
    ``exact_up_to``, else estimated from ids."""
    key = store.stream_key(after)
    params: dict[str, Any] = {"ptx": str(key.tx), "pid": key.id, "n": exact_up_to + 1}
    reads = store._reads
    if types is None:
        rows = [reads._bounded(_ALL, params)[0]]
    else:  # each type planned with its own value
        cap = scan_cap(exact_up_to)
        rows = [reads._bounded(_ONE_TYPE, {**params, "t": t, "cap": cap, "last": cap},
                               prepare=False)[0]
                for t in sorted(set(types))]
    samples = [(int(r[1]), None if r[2] is None else int(r[2])) for r in rows]
    capped = [(n, int(r[3])) for (n, _), r in zip(samples, rows, strict=True)
              if len(r) > 3 and r[3] is not None]
    if not capped and all(n <= exact_up_to for n, _ in samples):
        return CountEstimate(sum(n for n, _ in samples), True)
    head = store.latest_position()
    found = combine([s for s, r in zip(samples, rows, strict=True)
                     if len(r) <= 3 or r[3] is None], after=after, head=head, limit=exact_up_to)
    total = found.count
    counted = sum(n for n, _ in samples)
    for seen, beyond in capped:  # the type's density over the capped scan, over the rest
        total += extrapolate(seen, beyond - 1 - after, after=after, head=head)
    return CountEstimate(total, False, counted)
