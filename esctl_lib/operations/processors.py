"""Operating processors from the command line: setup, replay, reset and parked events
(list, skip, retry).

Replay and reset take the processor's lock for their whole run, so they refuse while a
runner holds it and a runner started meanwhile waits as a standby until they finish.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from esctl_lib.errors import InvalidEventError, ProcessingError
from esctl_lib.stores.base import EventStore

if TYPE_CHECKING:
    from esctl_lib.processing.parking import ParkedEvent
    from esctl_lib.processing.processor import Processor


def setup_all(store: EventStore, processors: Iterable[Processor] = ()) -> list[str]:
    """Create or upgrade the store's schema, then every processor's tables (idempotent).

    Returns what was done, one line per step.
    """
    done = list(store.setup())
    for processor in processors:
        if processor.tables:
            processor.setup(store)
            tables = ", ".join(processor.tables)
            done.append(f"{processor.kind} {processor.name}: tables ready ({tables})")
    return done


@contextmanager
def holding(store: EventStore, name: str) -> Iterator[None]:
    """Hold processor ``name``'s lock for the duration, or raise ProcessorLockedError
    (the runner's own rule for a lock taken without waiting)."""
    from esctl_lib.processing.locks import processor_lock, wait_for_lock

    lock = processor_lock(store, name)
    try:
        wait_for_lock(lock, threading.Event(), timeout=0)
        yield
    finally:
        lock.close()


def replay_processor(
    store: EventStore,
    processor: Processor,
    *,
    allow_side_effects: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Rebuild a processor from scratch (reset its tables and tracker, process to the head).

    A reactor would repeat its side effects, so it is refused unless
    ``allow_side_effects``. Returns how many events were handled.
    """
    from esctl_lib.processing.worker import replay

    if processor.kind == "reactor" and not allow_side_effects:
        raise ProcessingError(
            f"{processor.name!r} is a reactor: replaying it would repeat its side effects "
            "(allow side effects to do it anyway)",
            processor=processor.name,
        )
    with holding(store, processor.name):
        return replay(processor, store, progress=progress)


def reset_processor(store: EventStore, name: str, *, position: int = 0) -> int:
    """Put a processor's tracker at ``position`` without processing; returns the old one.

    Its tables are left as they are (replay rebuilds them).
    """
    if position < 0:
        raise InvalidEventError(f"position must be >= 0, got {position}")
    head = store.latest_position()
    if position > head:
        raise InvalidEventError(f"position {position} is past the head of the stream ({head})")
    with holding(store, name):
        old = store.get_tracker(name)
        store.reset_tracker(name, position)
    return old


def parked_events(store: EventStore, name: str | None = None, *,
                  since: float | None = None) -> list[ParkedEvent]:
    """Parked events of every processor, or of one, with their aggregates (by processor
    then event id); ``since`` (a Unix time) keeps those parked at or after it."""
    from esctl_lib.processing.parking import list_parked, with_aggregates

    return with_aggregates(store, list_parked(store, name, since=since))


def skip_event(store: EventStore, name: str, event_id: int, *,
               reason: str | None = None) -> ParkedEvent:
    """Park event ``event_id`` for processor ``name`` by hand so that it goes on past it.

    Committed at once: a running worker failing on that event moves on at its next
    attempt; a stopped processor skips it when it next runs. ``esctl retry`` queues it
    again. Raises InvalidEventError for an event that is not stored, parked already, or
    processed already by that processor.
    """
    from esctl_lib.processing.parking import skip_event as park_by_hand
    from esctl_lib.processing.parking import with_aggregates

    return with_aggregates(store, [park_by_hand(store, name, event_id, reason=reason)])[0]


def retry_parked_events(store: EventStore, name: str, *, event_id: int | None = None) -> int:
    """Queue a processor's parked events (or one) for another try; returns how many.

    The processor retries queued events in event order when it next runs or idles (one
    its tracker has not reached yet is processed in its turn).
    """
    from esctl_lib.processing.parking import retry_parked

    count = retry_parked(store, name, event_id=event_id)
    if event_id is not None and count == 0:
        raise InvalidEventError(f"event {event_id} is not parked for processor {name!r}")
    return count
