"""Reading the stream for people: ``tail`` (with ``--follow``) and one aggregate's history."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Collection, Iterator
from typing import Any

from esctl_lib.errors import InvalidEventError
from esctl_lib.events import Event, EventRegistry, normalize_uuid
from esctl_lib.stores.base import DEFAULT_PAGE_SIZE, EventStore


def tail_events(
    store: EventStore,
    *,
    types: Collection[str] | None = None,
    aggregate_id: Any = None,
    after: int | None = None,
    last: int | None = None,
    follow: bool = False,
    stop: threading.Event | None = None,
    idle_timeout: float = 0.5,
    page_size: int = DEFAULT_PAGE_SIZE,
    known_types: EventRegistry | Callable[[], EventRegistry] | None = None,
) -> Iterator[Event]:
    """Events in global order, in constant memory.

    ``after`` starts after that position (default: the beginning); ``last`` starts so that
    only the last ``last`` matching events are shown. With ``follow`` the iterator keeps
    yielding events as they are committed (woken by the store's push where it has one)
    until ``stop`` is set. ``types`` and ``aggregate_id`` filter.

    With ``known_types`` (a registry, or a function returning one, called only when some
    type is not stored), a type that is neither stored nor registered raises
    :class:`InvalidEventError` at once, so following a misspelt type never waits forever.
    """
    if after is not None and last is not None:
        raise InvalidEventError("give a start position or a number of last events, not both")
    if (after is not None and after < 0) or (last is not None and last < 0):
        raise InvalidEventError("positions and counts must be >= 0")
    type_filter = list(types) if types else None
    if type_filter and known_types is not None:
        check_types_known(store, type_filter, known_types)
    aggregate = normalize_uuid(aggregate_id, "aggregate id") if aggregate_id is not None else None
    if aggregate is not None:
        return _aggregate_tail(store, aggregate, type_filter, after, last, follow,
                               stop, idle_timeout, page_size)
    start = after or 0
    if last is not None:
        start = start_for_last(store, last, type_filter)
    if follow:
        return _follow(store, start, type_filter, stop, idle_timeout, page_size)
    events = store.iter_range(start, types=type_filter, page_size=page_size)
    if last is not None:
        return iter(deque(events, maxlen=last))
    return events


def _follow(
    store: EventStore,
    start: int,
    types: list[str] | None,
    stop: threading.Event | None,
    idle_timeout: float,
    page_size: int,
) -> Iterator[Event]:
    for page in store.subscribe(start, types=types, batch_size=page_size, stop=stop,
                                idle_timeout=idle_timeout):
        yield from page.events


def _aggregate_tail(
    store: EventStore,
    aggregate: str,
    types: list[str] | None,
    after: int | None,
    last: int | None,
    follow: bool,
    stop: threading.Event | None,
    idle_timeout: float,
    page_size: int,
) -> Iterator[Event]:
    head = store.latest_position()
    events = in_stream_order(store, store.read_aggregate(aggregate), after=after or 0,
                             until=head)
    if types is not None:
        events = [e for e in events if e.type in types]
    if last is not None:
        events = events[-last:] if last else []
    yield from events
    if follow:
        for event in _follow(store, head, types, stop, idle_timeout, page_size):
            if event.aggregate_id == aggregate:
                yield event


def in_stream_order(
    store: EventStore, events: Collection[Event], *, after: int, until: int
) -> list[Event]:
    """Those of stored ``events`` that lie after position ``after`` and not after ``until``
    in stream order, sorted in stream order (one round trip for their keys).

    One aggregate's history is in version order; on PostgreSQL its events may sit in
    another order in the stream, and a readable one may have a greater id than the head.
    """
    keys = store.stream_keys([e.id or 0 for e in events] + [after, until])
    low, high = keys[after], keys[until]
    picked = [e for e in events if low < keys[e.id or 0] <= high]
    return sorted(picked, key=lambda e: keys[e.id or 0])


def unknown_types(
    store: EventStore,
    types: Collection[str],
    known_types: EventRegistry | Callable[[], EventRegistry],
) -> list[str]:
    """Those of ``types`` that no stored event has and ``known_types`` does not register."""
    unstored = [t for t in types if not store.read_page(0, types=[t], limit=1).events]
    if not unstored:
        return []
    registry = known_types() if callable(known_types) else known_types
    return [t for t in unstored if not registry.is_known(t)]


def check_types_known(
    store: EventStore,
    types: Collection[str],
    known_types: EventRegistry | Callable[[], EventRegistry],
) -> None:
    """Raise :class:`InvalidEventError` naming the types that are neither stored nor
    registered (see :func:`unknown_types`)."""
    unknown = unknown_types(store, types, known_types)
    if unknown:
        names = ", ".join(repr(t) for t in unknown)
        raise InvalidEventError(
            f"no event of type {names} is stored and no module in [app] events registers "
            f"{'it' if len(unknown) == 1 else 'them'}"
        )


def start_for_last(store: EventStore, last: int, types: list[str] | None = None) -> int:
    """A position after which about ``last`` matching events remain (callers trim extras).

    Searches back from the head, doubling the window, then bisects: a few counts over
    the tail of the stream instead of a scan from the beginning.
    """
    head = store.latest_position()
    if last == 0:
        return head
    low, high, window = 0, head, last
    while window < head:
        probe = head - window
        if store.count(after=probe, types=types) >= last:
            low = probe
            break
        high, window = probe, window * 2
    # Invariant: count(after=low) >= last (or low == 0); count(after=high) < last.
    while high - low > 1:
        mid = (low + high) // 2
        if store.count(after=mid, types=types) >= last:
            low = mid
        else:
            high = mid
    return low


def aggregate_events(store: EventStore, aggregate_id: Any) -> list[Event]:
    """One aggregate's events in version order (raises on a malformed aggregate id)."""
    return store.read_aggregate(normalize_uuid(aggregate_id, "aggregate id"))
