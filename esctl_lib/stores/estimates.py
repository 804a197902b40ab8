"""Counting events in bounded time: the arithmetic shared by the SQL backends' estimates.

A backend counts each type's events after a position through an ordered index, stopping at
``limit + 1`` (one index range scan, never the whole table). A type with no more than
``limit`` is counted exactly. A type with more is estimated from positions: the sample's
density (events seen per id, between the position and the last id seen) times the ids
between the position and the head. The estimate is never below what was seen.
"""

from __future__ import annotations

from collections.abc import Iterable

from esctl_lib.stores.base import CountEstimate


def combine(samples: Iterable[tuple[int, int | None]], *, after: int, head: int,
            limit: int) -> CountEstimate:
    """One :class:`CountEstimate` from per-type samples ``(seen, last id seen)`` of at most
    ``limit + 1`` events each."""
    total, counted, exact = 0, 0, True
    for seen, last in samples:
        counted += seen
        if seen <= limit or last is None:
            total += seen
            continue
        exact = False
        span = last - after
        total += max(seen, round(seen * (head - after) / span)) if span > 0 else seen
    return CountEstimate(total, exact, None if exact else counted)
