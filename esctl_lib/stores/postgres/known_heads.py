"""The aggregates' newest versions a PostgreSQL store object has seen stored.

An append with expected version ``v`` must not leave a gap, so it reads the aggregate's
version first (an index probe in its statement, about 20 µs of the server's time on a
one-event append). When this store object has itself seen version ``v`` stored as the
aggregate's newest (it appended it, or read it), the probe adds nothing: events are never
deleted, so version ``v`` is there, and the (aggregate_id, version) key refuses a version
``v + 1`` written by anyone since. A store object's own appends and reads keep the map, so
an application that loads an aggregate and saves it, or saves one it holds, skips the probe.

The one difference is the refusal: a row refused by the key has drawn its id from the
identity sequence (as the loser of a race always has), where the probe refuses before any
row is formed. So the map is used only at exactly the version it holds; a wrong expected
version that this store object could know is wrong still takes the probe and draws no id.

Entries are only ever versions that were committed, so a stale entry costs at most such a
refusal; the map is bounded (oldest entries go first) and shared by the store object's
threads without a lock (a race between two notes keeps one of them, either true).
"""

from __future__ import annotations

from contextlib import suppress

#: How many aggregates a store object remembers (about 150 bytes each).
DEFAULT_LIMIT = 65_536


class KnownHeads:
    """Aggregate id -> the newest version this store object saw committed."""

    __slots__ = ("_heads", "limit")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._heads: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._heads)

    def at(self, aggregate_id: str, version: int) -> bool:
        """Is ``version`` (> 0) the aggregate's newest version as this object last saw it?"""
        return version > 0 and self._heads.get(aggregate_id) == version

    def note(self, aggregate_id: str, version: int) -> None:
        """Version ``version`` of the aggregate is committed and was its newest."""
        heads = self._heads
        if heads.pop(aggregate_id, None) is None and len(heads) >= self.limit:
            with suppress(StopIteration, KeyError, RuntimeError):  # another thread was first
                del heads[next(iter(heads))]  # the oldest note
        heads[aggregate_id] = version

    def forget(self, aggregate_id: str) -> None:
        """The aggregate's newest version is not known (after a refusal)."""
        self._heads.pop(aggregate_id, None)
