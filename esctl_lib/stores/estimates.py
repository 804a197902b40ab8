"""Counting events in bounded time: the arithmetic shared by the SQL backends' estimates.

A backend counts each type's events after a position through an ordered index, stopping at
``limit + 1`` (one index range scan, never the whole table). A type with no more than
``limit`` is counted exactly. A type with more is estimated from positions: the sample's
density (events seen per id, between the position and the last id seen) times the ids
between the position and the head. The estimate is never below what was seen. Neither
backend has a type index, so a type's scan also stops after :func:`scan_cap` stream
entries, and a type with fewer events among them is estimated from its density there.
"""

from __future__ import annotations

from collections.abc import Iterable

from esctl_lib.stores.base import CountEstimate


def scan_cap(exact_up_to: int) -> int:
    """How many stream entries one type's count looks at, at most (neither SQL backend has
    a type index; about 30 ms on this machine class)."""
    return max(100_000, 10 * (exact_up_to + 1))


def extrapolate(seen: int, span: int, *, after: int, head: int) -> int:
    """``seen`` events over the ``span`` ids after ``after``, at that density up to
    ``head``; never below ``seen``."""
    return max(seen, round(seen * (head - after) / span)) if span > 0 else seen


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
        total += extrapolate(seen, last - after, after=after, head=head)
    return CountEstimate(total, exact, None if exact else counted)
