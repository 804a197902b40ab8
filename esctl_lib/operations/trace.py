"""What caused what (``esctl trace``): the tree of events linked by causation ids.

Given an event (by id or uuid), the trace climbs its causation ids to the event that
started it all (the trigger: usually what a command recorded), then comes back down:
each event's children are the events whose ``causation_id`` is its uuid (what reactors
emitted in response), on any aggregate. Given a correlation id, the trees start at that
conversation's events whose cause is not part of it.

The reads use the stores' correlation and causation indexes, a page at a time. At most
``limit`` events are shown; the rest are still counted (up to a ceiling), and each shown
event says how many of its descendants were left out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from esctl_lib.errors import InvalidEventError
from esctl_lib.events import Event, normalize_uuid
from esctl_lib.operations.records import event_record
from esctl_lib.serialization import short_repr
from esctl_lib.stores.base import DEFAULT_PAGE_SIZE, EventStore

#: Events shown by default.
DEFAULT_TRACE_LIMIT = 500
#: Past the limit, events are still counted, up to this many times the limit.
COUNT_FACTOR = 10
#: How far up a causation chain the trace climbs looking for its trigger.
MAX_CLIMB = 10_000
_CHUNK = 500


@dataclass(slots=True)
class TraceNode:
    """One event of a trace and the events it caused."""

    event: Event
    children: list[TraceNode] = field(default_factory=list)
    #: Descendants of this event left out (past the limit).
    hidden: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The event's record (as ``tail --json``) with ``children`` and ``hidden``."""
        return {**event_record(self.event), "hidden": self.hidden,
                "children": [c.to_dict() for c in self.children]}


@dataclass(slots=True)
class Trace:
    """A trace: its trees, how many events they show, and how many were left out."""

    #: What was asked for, and what it turned out to be.
    query: str
    matched: str  # "event id", "event uuid" or "correlation id"
    roots: list[TraceNode]
    shown: int
    #: Linked events not shown; ``more_exact`` is False when counting stopped at a ceiling.
    more: int = 0
    more_exact: bool = True
    #: The uuid of the event asked for (an id or uuid query), else None.
    focus: str | None = None
    #: The trigger's causation id when that event is not stored (else None).
    missing_cause: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the query, the counts and the trees."""
        return {"query": self.query, "matched": self.matched, "focus": self.focus,
                "shown": self.shown, "more": self.more, "more_exact": self.more_exact,
                "missing_cause": self.missing_cause,
                "trees": [r.to_dict() for r in self.roots]}


def trace_events(
    store: EventStore,
    ident: str | int,
    *,
    limit: int = DEFAULT_TRACE_LIMIT,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Trace:
    """The causation tree around ``ident``: an event id (position), an event uuid or a
    correlation id. Raises :class:`InvalidEventError` when nothing matches."""
    if limit < 1:
        raise InvalidEventError("the trace limit must be >= 1")
    text = str(ident).strip()
    if text.isdigit():
        found = store.find_events(ids=[int(text)])
        if not found:
            raise InvalidEventError(f"there is no event {text} in the store")
        return _from_event(store, text, "event id", found[0], limit, page_size)
    try:
        key = normalize_uuid(text, "id")
    except InvalidEventError:
        raise InvalidEventError(
            f"{short_repr(text)} is not an event id, an event uuid or a correlation id"
        ) from None
    found = store.find_events(uuids=[key])
    if found:
        return _from_event(store, text, "event uuid", found[0], limit, page_size)
    roots = _correlation_roots(store, key, limit, page_size)
    if not roots:
        raise InvalidEventError(f"no event has the uuid or correlation id {key}")
    trace = Trace(text, "correlation id", [], 0)
    _grow(store, trace, roots, limit, page_size)
    return trace


def _from_event(store: EventStore, query: str, matched: str, event: Event, limit: int,
                page_size: int) -> Trace:
    root, missing = _climb(store, event)
    trace = Trace(query, matched, [], 0, focus=event.uuid, missing_cause=missing)
    _grow(store, trace, [root], limit, page_size)
    return trace


def _climb(store: EventStore, event: Event) -> tuple[Event, str | None]:
    """The trigger of ``event``'s causation chain, and its cause's uuid if that is not stored."""
    seen = {event.uuid}
    for _ in range(MAX_CLIMB):
        cause = event.causation_id
        if cause is None:
            return event, None
        parents = store.find_events(uuids=[cause])
        if not parents:
            return event, cause
        if parents[0].uuid in seen:  # a cycle (only hand-made ids can make one)
            return event, None
        event = parents[0]
        seen.add(event.uuid)
    return event, None


def _correlation_roots(store: EventStore, correlation_id: str, limit: int,
                       page_size: int) -> list[Event]:
    """The events of a correlation whose cause is not one of its (earlier) events."""
    seen: set[str] = set()
    roots: list[Event] = []
    after = 0
    ceiling = limit * COUNT_FACTOR
    while len(seen) < ceiling:
        page = store.read_by_correlation(correlation_id, after=after, limit=page_size)
        for event in page:
            if event.causation_id is None or event.causation_id not in seen:
                roots.append(event)
            seen.add(event.uuid)
        if len(page) < page_size:
            break
        after = page[-1].id or after
    return roots


def _grow(store: EventStore, trace: Trace, roots: list[Event], limit: int,
          page_size: int) -> None:
    """Breadth first from ``roots``: show up to ``limit`` events, count the others."""
    owner: dict[str, TraceNode] = {}  # every reached uuid → its node, or nearest shown one
    shown: dict[str, TraceNode] = {}
    seen: set[str] = set()
    for event in roots[:limit]:
        node = TraceNode(event)
        trace.roots.append(node)
        owner[event.uuid] = shown[event.uuid] = node
        seen.add(event.uuid)
    trace.shown = len(trace.roots)
    trace.more = len(roots) - trace.shown
    ceiling = limit * COUNT_FACTOR
    frontier = list(shown)
    while frontier:
        next_frontier: list[str] = []
        for event in _caused_by(store, frontier, page_size):
            if event.uuid in seen:
                continue
            seen.add(event.uuid)
            parent = owner[event.causation_id or ""]
            if trace.shown < limit and parent.event.uuid == event.causation_id:
                node = TraceNode(event)
                parent.children.append(node)
                owner[event.uuid] = shown[event.uuid] = node
                trace.shown += 1
            else:
                parent.hidden += 1
                owner[event.uuid] = parent
                trace.more += 1
                if trace.more >= ceiling:
                    trace.more_exact = False
                    return
            next_frontier.append(event.uuid)
        frontier = next_frontier
    for node in shown.values():
        node.children.sort(key=lambda n: n.event.id or 0)


def _caused_by(store: EventStore, uuids: Collection[str], page_size: int) -> Iterator[Event]:
    """Every event caused by one of ``uuids``, read in pages, in id order per chunk."""
    items = list(uuids)
    for start in range(0, len(items), _CHUNK):
        chunk = items[start:start + _CHUNK]
        after = 0
        while True:
            page = store.read_caused_by(chunk, after=after, limit=page_size)
            yield from page
            if len(page) < page_size:
                break
            after = page[-1].id or after
