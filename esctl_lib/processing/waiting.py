"""Read-your-writes: wait until a processor has processed (or scanned past) a position.

::

    stored = repository.save(todo)
    if not wait_for(store, "outstanding_todos", stored[-1].id, timeout=2.0):
        ...  # the read model is not there yet

Stream order, not id order, decides what "past" means (see :meth:`EventStore.read_page`):
a tracker has reached ``position`` when its stream key is at or past that of ``position``
(:meth:`EventStore.stream_keys`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from esctl_lib.errors import StoreUnavailableError
from esctl_lib.stores.base import EventStore, StreamKey

_FIRST_POLL = 0.002
_MAX_POLL = 0.05


def is_readable(store: EventStore, position: int) -> bool:
    """True when the committed event at ``position`` can be read from the stream now.

    On PostgreSQL a committed event becomes readable once every transaction that began
    before it has ended; elsewhere at once.
    """
    if position <= 0:
        return True
    head = store.latest_position()
    return _readable(store.stream_keys([position, head]), position, head)


def has_reached(store: EventStore, processor_name: str, position: int) -> bool:
    """True when the processor's tracker is at or past ``position`` in stream order."""
    if position <= 0:
        return True
    head = store.latest_position()
    tracker = store.get_tracker(processor_name)
    keys = store.stream_keys([position, head, tracker])
    return _readable(keys, position, head) and keys[tracker] >= keys[position]


def _readable(keys: Mapping[int, StreamKey], position: int, head: int) -> bool:
    # The event is stored (a fixed place in the stream) and not after the readable head.
    return keys[position].id == position and keys[position] <= keys[head]


def wait_for(store: EventStore, processor_name: str, position: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the processor to reach ``position``; True if it did.

    ``position`` is the id of a committed event (typically the caller's own write).

    A lost connection (:class:`StoreUnavailableError`) is retried until the deadline; it
    is raised when the store is still unavailable then.

    A processor filtered on types saves how far it scanned past events it does not handle
    about once a second, so waiting for such an event may take that long.
    """
    deadline = time.monotonic() + timeout
    delay = _FIRST_POLL
    while True:
        try:
            if has_reached(store, processor_name, position):
                return True
        except StoreUnavailableError:  # a lost connection (a restart): retry until the deadline
            if time.monotonic() >= deadline:
                raise
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, _MAX_POLL)
