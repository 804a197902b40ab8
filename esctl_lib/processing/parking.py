"""Parked events: the dead letters of processors that gave up on an event.

When an event fails ``max_attempts`` times in a row, the worker records it in the
``parked_events`` table at once, in its own transaction that also moves the tracker past
it (the events before it committed already), and goes on. :func:`skip_event` parks an
event by hand (``esctl skip``), whether the processor runs or not: a worker skips every
event it reads that has a row here. Later, :func:`retry_parked` queues parked events for
another try: the running worker picks queued ones up when it is idle (or call
:func:`process_parked` where no worker runs), in event order, and a queued event the
tracker has not reached yet is simply processed in its turn. A queued event has
``attempts`` = 0 (no attempt since it was queued). A retry that works deletes the row in
the transaction of its effects; one that fails leaves it parked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from esctl_lib.errors import InvalidEventError, ProcessingError
from esctl_lib.events import Event
from esctl_lib.processing.batching import BatchTransaction
from esctl_lib.processing.processor import Processor, stored_names_for
from esctl_lib.processing.reactor import Reactor
from esctl_lib.processing.tables import Tables
from esctl_lib.stores.base import EventStore

TABLE = "parked_events"
_MAX_ERROR = 2000
_COLUMNS = (
    "processor", "event_id", "event_uuid", "event_type", "error", "attempts",
    "first_failed_at", "last_failed_at",
)
log = logging.getLogger("esctl.processing")


@dataclass(frozen=True, slots=True)
class ParkedEvent:
    """One parked event (times are Unix timestamps)."""

    processor: str
    event_id: int
    event_uuid: str
    event_type: str
    error: str
    attempts: int
    first_failed_at: float
    last_failed_at: float
    #: The event's aggregate, where looked up (:func:`with_aggregates`); else None.
    aggregate_id: str | None = None

    @property
    def queued(self) -> bool:
        """True when it waits for a retry."""
        return self.attempts == 0


@dataclass(frozen=True, slots=True)
class ParkedRetry:
    """What :func:`process_parked` did: how many events now went through, how many failed."""

    succeeded: int
    failed: int


def _from_row(row: dict[str, Any]) -> ParkedEvent:
    return ParkedEvent(
        processor=str(row["processor"]),
        event_id=int(row["event_id"]),
        event_uuid=str(row["event_uuid"]),
        event_type=str(row["event_type"]),
        error=str(row["error"]),
        attempts=int(row["attempts"]),
        first_failed_at=float(row["first_failed_at"]),
        last_failed_at=float(row["last_failed_at"]),
    )


def list_parked(store: EventStore, processor: str | None = None, *,
                since: float | None = None) -> list[ParkedEvent]:
    """Parked events of every processor (or of one), by processor then event id.

    ``since`` (a Unix time) keeps those that failed (or were skipped) at or after it.
    """
    where = {"processor": processor} if processor is not None else None
    with store.transaction() as tx:
        rows = Tables(tx).select(TABLE, where=where, columns=_COLUMNS,
                         order_by=("processor", "event_id"))
    parked = [_from_row(row) for row in rows]
    if since is not None:
        parked = [p for p in parked if p.last_failed_at >= since]
    return parked


def with_aggregates(store: EventStore, parked: list[ParkedEvent]) -> list[ParkedEvent]:
    """``parked`` with each event's aggregate id looked up in the store."""
    import dataclasses

    found = []
    for p in parked:
        event = read_event(store, p.event_id, p.event_type)
        agg = str(event.aggregate_id) if event is not None else None
        found.append(dataclasses.replace(p, aggregate_id=agg))
    return found


def parked_in(tx: Tables, processor: str, events: Sequence[Event]) -> tuple[set[int], set[int]]:
    """Of ``events``, the ids parked for ``processor``: (to skip, queued for a retry).

    The worker runs this in each batch's transaction: an event parked by hand ahead of the
    tracker is skipped, and a queued one is processed in its turn (its row then deleted).
    """
    if not events:
        return set(), set()
    ids = [e.id or 0 for e in events]
    p = tx.placeholder
    rows = tx.fetchall(
        f"SELECT event_id, attempts FROM {TABLE} WHERE processor = {p} "
        f"AND event_id >= {p} AND event_id <= {p}", (processor, min(ids), max(ids)))
    present = set(ids)
    skip = {int(r[0]) for r in rows if int(r[0]) in present and int(r[1]) != 0}
    queued = {int(r[0]) for r in rows if int(r[0]) in present and int(r[1]) == 0}
    return skip, queued


def split_parked(found: dict[int, int], events: Sequence[Event]) -> tuple[set[int], set[int]]:
    """:func:`parked_in`'s answer from rows read already (event id -> attempts)."""
    if not found:
        return set(), set()
    present = {e.id or 0 for e in events}
    skip = {i for i, a in found.items() if i in present and a != 0}
    queued = {i for i, a in found.items() if i in present and a == 0}
    return skip, queued


#: The ``error`` of an event parked by hand (``esctl skip``), before its reason.
SKIPPED = "skipped by hand"


def skip_event(store: EventStore, processor: str, event_id: int, *,
               reason: str | None = None, clock: Callable[[], float] = time.time) -> ParkedEvent:
    """Park event ``event_id`` for ``processor`` by hand, so that it goes on past it.

    Works whether or not the processor runs: a running worker failing on that event
    skips it at its next attempt. Refuses (InvalidEventError) an event that is not stored,
    one the processor has processed already, and one parked already.
    """
    event = read_event(store, event_id, None)
    if event is None:
        raise InvalidEventError(f"there is no event {event_id} in the store")
    if any(p.event_id == event_id for p in list_parked(store, processor)):
        raise InvalidEventError(f"event {event_id} is parked already for {processor!r}")
    now = clock()
    error = SKIPPED if not reason else f"{SKIPPED}: {reason}"
    parked = ParkedEvent(processor=processor, event_id=event_id, event_uuid=event.uuid,
                         event_type=event.type, error=error[:_MAX_ERROR], attempts=1,
                         first_failed_at=now, last_failed_at=now)
    with store.transaction() as tx:
        # Hold the tracker's row (made at 0 if missing) while deciding: a batch that
        # processes the event either commits first (and the check below refuses) or waits
        # for this transaction and then finds the event parked (the worker looks again
        # after moving its tracker), so a skipped event is never also applied.
        p = tx.placeholder
        tx.execute(f"INSERT INTO trackers (name, position, updated_at) VALUES ({p}, 0, {p}) "
                   "ON CONFLICT (name) DO UPDATE SET position = trackers.position",
                   (processor, now))
        position = tx.get_tracker(processor)
        if not is_after(store, position, event):
            raise InvalidEventError(
                f"{processor!r} has processed event {event_id} already (its position is "
                f"{position}): nothing to skip")
        Tables(tx).insert(TABLE, {c: getattr(parked, c) for c in _COLUMNS})
    return parked


def is_after(store: EventStore, position: int, event: Event) -> bool:
    """Whether ``event`` lies after ``position`` in stream order (not yet processed by a
    tracker there). Stream order may differ from id order (PostgreSQL), so it compares
    how many events of its type follow each: more follow the earlier of the two."""
    types = stored_names_for([event.type], store.registry)
    return store.count(after=position, types=types) > store.count(
        after=event.id or 0, types=types)


def retry_parked(store: EventStore, processor: str, *, event_id: int | None = None) -> int:
    """Queue a processor's parked events (or one of them) for a retry; returns how many.

    The worker running that processor retries them when it is idle.
    """
    where: dict[str, Any] = {"processor": processor}
    if event_id is not None:
        where["event_id"] = event_id
    with store.transaction() as tx:
        return Tables(tx).update(TABLE, {"attempts": 0}, where=where)


def park(
    tx: Tables,
    processor: str,
    error: ProcessingError,
    *,
    attempts: int,
    first_failed_at: float,
    last_failed_at: float,
) -> None:
    """Record (or update) a parked event inside ``tx``."""
    tx.upsert(
        TABLE,
        {
            "processor": processor,
            "event_id": error.event_id,
            "event_uuid": error.event_uuid or "",
            "event_type": error.event_type or "",
            "error": str(error)[:_MAX_ERROR],
            "attempts": attempts,
            "first_failed_at": first_failed_at,
            "last_failed_at": last_failed_at,
        },
        key=("processor", "event_id"),
        update=("error", "attempts", "last_failed_at"),
    )


def process_parked(
    processor: Processor,
    store: EventStore,
    *,
    queued_only: bool = True,
    on_error: Callable[[BaseException, str], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> ParkedRetry:
    """Process the processor's queued parked events now (all of them if not ``queued_only``).

    Each in its own transaction, which also deletes its row; the tracker does not move.
    Run it only where no worker runs this processor (the worker calls it itself).
    """
    succeeded = failed = 0
    position = store.get_tracker(processor.name)
    for parked in list_parked(store, processor.name):
        if queued_only and not parked.queued:
            continue
        event = read_event(store, parked.event_id, parked.event_type)
        if event is not None and is_after(store, position, event):
            continue  # the tracker has not reached it: processed in its turn
        try:
            _reprocess(processor, store, parked)
            succeeded += 1
        except ProcessingError as e:
            failed += 1
            log.warning("parked event %s of %s failed again: %s", parked.event_id,
                        processor.name, e)
            if on_error is not None:
                on_error(e, processor.name)
            with store.transaction() as tx:
                Tables(tx).update(
                    TABLE,
                    {"attempts": parked.attempts + 1, "error": str(e)[:_MAX_ERROR],
                     "last_failed_at": clock()},
                    where={"processor": processor.name, "event_id": parked.event_id},
                )
    return ParkedRetry(succeeded, failed)


def _reprocess(processor: Processor, store: EventStore, parked: ParkedEvent) -> None:
    """Handle one parked event again, as a worker's batch does (``batching.py``): the
    handler runs outside any write transaction, and its writes, its emitted events and the
    parked row's deletion commit together in one short one at the end."""
    event = read_event(store, parked.event_id, parked.event_type)
    with BatchTransaction.outside(store, may_append=isinstance(processor, Reactor)) as tx:
        if event is not None:
            processor.process_batch([event], tx, store)
        else:
            log.warning("parked event %s of %s is no longer stored; dropping it",
                        parked.event_id, processor.name)
        tx.delete(TABLE, where={"processor": processor.name, "event_id": parked.event_id})


def read_event(store: EventStore, event_id: int, event_type: str | None) -> Event | None:
    """The stored event with this id (of this decoded type), or None when there is none."""
    page = store.read_page(event_id - 1, limit=1)
    if page.events and page.events[0].id == event_id:
        return page.events[0]
    # Stream order may differ from id order (PostgreSQL): search that type's events.
    types = stored_names_for([event_type], store.registry) if event_type else None
    for event in store.iter_range(0, types=types):
        if event.id == event_id:
            return event
    return None
