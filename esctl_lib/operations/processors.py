"""Operating processors from the command line: setup, replay, reset and parked events
(list, skip, retry).

Reset takes the processor's lock, so it refuses while a runner holds it. Replay rebuilds
online, beside the live projection, and works while a runner is up.
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
    from esctl_lib.processing.rebuild import RebuildResult
    from esctl_lib.processing.rebuilds import RebuildState


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
) -> RebuildResult:
    """Rebuild a processor online: into shadow tables while the live ones keep serving
    reads (and a runner, if one is up, keeps processing), swapped in atomically at the
    head with its tracker (see :mod:`esctl_lib.processing.rebuild`). A failed or
    interrupted rebuild leaves the live projection as it was; :func:`rebuild_state` says
    how the latest rebuild went.

    A reactor would repeat its side effects, so it is refused unless
    ``allow_side_effects``. ``progress(done, total)`` is called after each batch.
    """
    from esctl_lib.processing.rebuild import rebuild

    if processor.kind == "reactor" and not allow_side_effects:
        raise ProcessingError(
            f"{processor.name!r} is a reactor: replaying it would repeat its side effects "
            "(allow side effects to do it anyway)",
            processor=processor.name,
        )
    return rebuild(processor, store, progress=progress)


def rebuild_state(store: EventStore, name: str) -> RebuildState | None:
    """How processor ``name``'s latest rebuild went (None when it never had one): see
    :class:`~esctl_lib.processing.rebuilds.RebuildState`."""
    from esctl_lib.processing.rebuilds import rebuild_state as read

    return read(store, name)


def reset_processor(store: EventStore, name: str, *, position: int = 0) -> int:
    """Put a processor's tracker at ``position`` without processing; returns the old one.

    ``position`` is 0 or a readable place in the stream (on PostgreSQL: a readable event's
    id); the processor then handles exactly the events after it in stream order. Its
    tables are left as they are (replay rebuilds them).
    """
    _check_reset_target(store, position)
    with holding(store, name):
        old = store.get_tracker(name)
        store.reset_tracker(name, position)
    return old


def _check_reset_target(store: EventStore, position: int) -> None:
    """Raise :class:`InvalidEventError` unless ``position`` is 0 or a readable place.

    "Past the head" is decided in stream order (on PostgreSQL a readable event may have a
    greater id than the head). Elsewhere than 0 the position must be a fixed place in the
    stream (see :meth:`EventStore.stream_keys`): on PostgreSQL an id not committed yet
    would later move a tracker left there past events it never handled.
    """
    if position < 0:
        raise InvalidEventError(f"position must be >= 0, got {position}")
    if position == 0:
        return
    head = store.latest_position()
    keys = store.stream_keys([position, head])
    past = f"position {position} is past the head of the stream ({head})"
    if keys[position] > keys[head]:
        raise InvalidEventError(past)
    if keys[position].id != position:
        raise InvalidEventError(past if position > head else
                                f"position {position} is not the id of a stored event")


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
