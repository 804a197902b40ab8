"""Partitioned processors: one processor split into ``N`` workers by aggregate.

A processor that declares ``partitions = N`` (a class attribute, or ``[processing]
partitions = {name = N}`` in ``eventsourcery.toml``) runs as ``N`` partitions. Partition
``i`` handles exactly the events whose aggregate id hashes to ``i``::

    int(md5(aggregate_id.encode()).hexdigest()[:8], 16) % N   # the lower-case UUID string

MD5 here is a hash, not a safeguard: stable across processes, hosts and Python versions
(unlike ``hash()``), so every runner agrees on the split, and one that PostgreSQL computes
too, so a partition's reads are filtered by the server (``EventStore.partition_reads``):
a partition neither receives nor decodes the other partitions' events. All the events of
one aggregate land in one partition, which reads them in stream order: order within an
aggregate is kept; there is no order between aggregates of different partitions.

Each partition is a processor of its own for everything the runner does: its name is
``"<name>#<i>/<N>"`` (:func:`partition_name`), which names its tracker, its processor
lock, its ``processor_state`` row and its parked events. The partitions share the
processor's tables (handlers must only touch rows of their event's aggregate, or rows
that tolerate concurrent writers, as upserts of counters do).

Because the lock is per partition, partitions spread over every runner on the store:
each runner starts one child per partition; a child whose partition another runner holds
waits as a standby and takes it over when that runner dies (competing consumers).

**Changing N** changes every partition's name, so it is a replay: a runner refuses to
start a processor whose store holds trackers of another partition count
(:func:`check_partition_count`), until ``esctl replay`` rebuilt it (the rebuild sets the
trackers of the new partitions and removes the old ones).
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from esctl_lib.errors import ConfigError

if TYPE_CHECKING:
    from esctl_lib.events import Event
    from esctl_lib.processing.processor import Processor
    from esctl_lib.stores.base import EventStore

_PARTITION_RE = re.compile(r"^(?P<base>.+)#(?P<index>\d+)/(?P<count>\d+)$")


@dataclass(frozen=True, slots=True)
class Partition:
    """Partition ``index`` of ``count`` of processor ``base``."""

    base: str
    index: int
    count: int

    @property
    def name(self) -> str:
        return partition_name(self.base, self.index, self.count)

    def accepts(self, event: Event) -> bool:
        """Whether ``event`` belongs to this partition."""
        return partition_of(event.aggregate_id, self.count) == self.index


def partition_of(aggregate_id: Any, count: int) -> int:
    """The partition (0 .. count-1) of ``aggregate_id``: the first 32 bits of the MD5 of
    its canonical string, as an unsigned number, modulo ``count``."""
    digest = hashlib.md5(str(aggregate_id).encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:4], "big") % count


def partition_name(base: str, index: int, count: int) -> str:
    """``"<base>#<index>/<count>"``: the name of a partition's tracker, lock and state."""
    return f"{base}#{index}/{count}"


def parse_partition_name(name: str) -> Partition | None:
    """The partition a name like ``"proj#1/4"`` names, or None for a plain name."""
    found = _PARTITION_RE.match(name)
    if found is None:
        return None
    index, count = int(found["index"]), int(found["count"])
    if count < 2 or index >= count:
        return None
    return Partition(found["base"], index, count)


def partition_count(processor: Processor) -> int:
    """How many partitions ``processor`` runs as (1: not partitioned)."""
    if partition_of_processor(processor) is not None:
        return 1  # a partition is not split again
    return int(getattr(processor, "partitions", 1) or 1)


def partition_of_processor(processor: Processor) -> Partition | None:
    """The partition a partition instance stands for (None for a whole processor)."""
    found: Partition | None = processor.__dict__.get("partition")
    return found


def partition_names(processor: Processor) -> list[str]:
    """The names ``processor`` runs under: its own, or one per partition (for status)."""
    count = partition_count(processor)
    if count == 1:
        return [processor.name]
    return [partition_name(processor.name, i, count) for i in range(count)]


def partition_processors(processor: Processor) -> list[Processor]:
    """``processor`` itself, or one instance per partition, each named for its partition.

    A partition instance is a shallow copy whose ``name`` is the partition's and whose
    ``partition`` attribute says which events it takes (the worker filters its pages by it).
    """
    count = partition_count(processor)
    if count == 1:
        return [processor]
    parts: list[Processor] = []
    for index in range(count):
        part = copy.copy(processor)
        state = part.__dict__
        state.pop("_dispatch_table", None)  # bound to the original: rebuilt on first use
        for key in ("_fallback", "_plain_fallback", "_traced_dispatch"):
            state.pop(key, None)
        state["name"] = partition_name(processor.name, index, count)
        state["partition"] = Partition(processor.name, index, count)
        parts.append(part)
    return parts


def expand_partitions(processors: Iterable[Processor]) -> list[Processor]:
    """Every processor, with partitioned ones replaced by their partitions (in order)."""
    return [part for p in processors for part in partition_processors(p)]


def event_filter(processor: Processor) -> Callable[[Event], bool] | None:
    """What a worker keeps of each page it reads: the partition's events (None: all)."""
    part = partition_of_processor(processor)
    return None if part is None else part.accepts


def stale_partition_trackers(store: EventStore, processor: Processor) -> list[str]:
    """Trackers of ``processor`` left by another partition count (or by it unpartitioned
    when it is partitioned now, or partitioned when it is not)."""
    base = partition_of_processor(processor)
    name = base.base if base is not None else processor.name
    count = base.count if base is not None else partition_count(processor)
    stale = []
    for tracker in store.trackers():
        found = parse_partition_name(tracker)
        other_count = found is not None and found.base == name and found.count != count
        if other_count or (tracker == name and count > 1):
            stale.append(tracker)
    return sorted(stale)


def check_partition_count(store: EventStore, processor: Processor) -> None:
    """Refuse (ConfigError) to run a processor whose partition count changed unreplayed.

    A tracker of the old layout still in the store means the new partitions would start
    from nothing (or the old ones would miss events): replay first, which rebuilds the
    tables from the start and leaves only the new trackers.
    """
    stale = stale_partition_trackers(store, processor)
    if not stale:
        return
    part = partition_of_processor(processor)
    name = part.base if part is not None else processor.name
    count = part.count if part is not None else partition_count(processor)
    raise ConfigError(
        f"processor {name!r} now runs as {count} partition(s) but the store has trackers of "
        f"another layout ({', '.join(stale)}); run `esctl replay {name}` to rebuild it with "
        "the new partitions")


def rebuild_trackers(store: EventStore, processor: Processor) -> tuple[list[str], list[str]]:
    """For a rebuild of ``processor``: the trackers to put at the shadow's position (its
    partitions', or its own) and those of another layout to remove."""
    return partition_names(processor), stale_partition_trackers(store, processor)


def validate_partitions(owner: str, value: object) -> int:
    """``value`` as a partition count, or ConfigError/TypeError naming ``owner``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{owner}: partitions must be a whole number >= 1, not {value!r}")
    return value


def apply_partitions(processor: Processor, configured: Any, origin: str) -> None:
    """Apply ``[processing] partitions = {name = N}`` to ``processor`` (on the instance)."""
    if not configured or processor.name not in configured:
        return
    count = validate_partitions(f"{origin}.{processor.name}", configured[processor.name])
    instance: Any = processor
    instance.partitions = count
