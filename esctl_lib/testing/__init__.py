"""Testing tools: the event store contract as a suite, and helpers for application tests.

Run the store contract against your own backend (put this in a test module)::

    from esctl_lib import EventStore, open_store
    from esctl_lib.testing import EventStoreContract


    class TestMyStore(EventStoreContract):
        def make_store(self) -> EventStore:
            return open_store(f"sqlite:///{self.tmp_path / 'events.db'}")

        def open_again(self) -> EventStore:  # optional: a second store on the same data
            return self.make_store()

pytest then runs every case of the contract on that store: appends, optimistic
concurrency, reads, subscriptions, trackers, parked events, refusals, concurrent writers.
Override ``store_opener()`` as well to have the concurrent writers run in processes of
their own (see :class:`EventStoreContract`).

For application tests:

- :func:`process_events` runs a projector or reactor over a list of events on a fresh
  memory store, the way ``esctl run --once`` does, and returns its tables' rows and the
  events it emitted;
- :func:`given` / ``.when()`` / ``.then()`` / ``.then_raises()`` check an aggregate's
  commands against the events they record;
- :func:`eventually` polls a condition until a deadline, for tests of background work.

Only :class:`EventStoreContract` needs pytest; it is imported when first asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from esctl_lib.testing.aggregates import Given, When, given
from esctl_lib.testing.polling import eventually
from esctl_lib.testing.processors import ProcessorRun, process_events

if TYPE_CHECKING:
    from esctl_lib.testing.contract import EventStoreContract

__all__ = [
    "EventStoreContract",
    "Given",
    "ProcessorRun",
    "When",
    "eventually",
    "given",
    "process_events",
]


def __getattr__(name: str) -> Any:
    if name == "EventStoreContract":
        from esctl_lib.testing.contract import EventStoreContract

        return EventStoreContract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
