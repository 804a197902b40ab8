"""Reactors: processors with side effects that may emit new events.

::

    class TodoCompletedNotifier(Reactor):
        emits = (StakeholderNotified,)

        @handles(TodoCompleted)
        def _completed(self, event: Event, tx: BatchTransaction) -> None:
            send_email(...)
            self.emit(StakeholderNotified(aggregate_id=event.aggregate_id))

Emitted events commit in the batch's write transaction, with the tracker move; the handler
itself (sending the e-mail) runs before that transaction opens, holding no lock. Each gets a
deterministic uuid from (reactor name, triggering event uuid, emit index), so re-processing
an event (after a crash, a retry or a replay) never stores its emitted events twice: an
emitted event whose uuid is already stored is skipped.
"""

from __future__ import annotations

import uuid as uuid_mod
from collections.abc import Sequence
from typing import ClassVar

from esctl_lib.errors import InvalidEventError
from esctl_lib.events import Event
from esctl_lib.processing.processor import Processor
from esctl_lib.processing.tables import Tables
from esctl_lib.stores.base import EventStore, Transaction

#: The uuid5 namespace of emitted events' uuids.
EMIT_NAMESPACE = uuid_mod.UUID("6f1c2a4e-8d3b-5e7a-9c41-2b7d0e5f3a18")


def emitted_uuid(reactor_name: str, trigger_uuid: str, index: int) -> str:
    """The uuid of the ``index``-th event (from 0) a reactor emits for one triggering event."""
    return str(uuid_mod.uuid5(EMIT_NAMESPACE, f"{reactor_name}:{trigger_uuid}:{index}"))


class Reactor(Processor):
    """A processor that reacts to events and may :meth:`emit` the classes in ``emits``.

    A reactor may own ``tables`` like a projector.
    """

    kind = "reactor"
    emits: ClassVar[tuple[type[Event], ...]] = ()

    def emit(self, event: Event) -> Event:
        """Emit ``event`` as a consequence of the event being handled; returns it as stored.

        It gets a deterministic uuid, ``causation_id`` = the trigger's uuid and
        ``correlation_id`` = the trigger's correlation id (or its uuid) unless the caller
        set one. It is appended when the batch commits (so it has no id yet).
        """
        trigger = self.current_event
        pending: _Emitted | None = self.__dict__.get("_emitted")
        if trigger is None or pending is None:
            raise InvalidEventError(f"{self.name}: emit() is only allowed inside a handler")
        if type(event) not in self.emits:
            declared = ", ".join(c.__name__ for c in self.emits) or "nothing"
            raise InvalidEventError(
                f"reactor {self.name!r} may not emit {type(event).__name__}: it declares "
                f"emits = ({declared}); add the class to emits"
            )
        stamped = event.replace(
            uuid=emitted_uuid(self.name, trigger.uuid, pending.next_index(trigger.uuid)),
            causation_id=trigger.uuid,
            correlation_id=event.correlation_id or trigger.correlation_id or trigger.uuid,
        )
        pending.events.append(stamped)
        return stamped

    def process_batch(
        self, events: Sequence[Event], tx: Transaction | Tables, store: EventStore | None
    ) -> int:
        pending = _Emitted()
        self.__dict__["_emitted"] = pending
        try:
            if self.emits:  # it may append: say so before the handlers' first write
                tx.will_append()
            handled = super().process_batch(events, tx, store)
            if pending.events:
                if store is None:
                    raise InvalidEventError(f"{self.name}: emitting needs the store")
                append_new(pending.events, tx, store)
        finally:
            del self.__dict__["_emitted"]
        return handled


    def take_emitted(self, *, keep: str | None = None) -> list[Event]:
        """Take the events emitted so far in this batch, except those caused by event
        uuid ``keep``: the worker commits them with a prefix of the batch."""
        pending: _Emitted | None = self.__dict__.get("_emitted")
        if pending is None:
            return []
        taken = [e for e in pending.events if e.causation_id != keep]
        pending.events = [e for e in pending.events if e.causation_id == keep]
        return taken


class _Emitted:
    """The events emitted in one batch, and the emit index of the current trigger."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._trigger = ""
        self._index = 0

    def next_index(self, trigger_uuid: str) -> int:
        if trigger_uuid != self._trigger:
            self._trigger, self._index = trigger_uuid, 0
        else:
            self._index += 1
        return self._index


def append_new(events: Sequence[Event], tx: Transaction | Tables, store: EventStore) -> int:
    """Append, in order, those ``events`` whose uuid is not stored yet; returns how many.

    Consecutive events of one aggregate go in one append.
    """
    if not events:
        return 0
    stored = store.existing_uuids([e.uuid for e in events])
    fresh = [e for e in events if e.uuid not in stored]
    start = 0
    while start < len(fresh):
        end = start + 1
        while end < len(fresh) and fresh[end].aggregate_id == fresh[start].aggregate_id:
            end += 1
        tx.append(fresh[start:end])
        start = end
    return len(fresh)
