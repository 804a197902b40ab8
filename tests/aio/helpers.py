"""Events, an aggregate and openers shared by the asyncio tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from esctl_lib import Aggregate, AsyncEventStore, Event, handles, open_async_store
from tests.backends import StoreSpec


class AioCounted(Event, type_name="aio_counted"):
    """A counter moved by ``body["by"]``."""


class AioNoted(Event, type_name="aio_noted"):
    """A second type, for type filters."""


class Counter(Aggregate):
    """Counts; ``bump`` records one event per step."""

    def __init__(self, aggregate_id: Any, events: Iterable[Event] = ()) -> None:
        self.total = 0
        super().__init__(aggregate_id, events)

    def bump(self, *steps: int) -> None:
        for by in steps:
            self.apply(AioCounted(aggregate_id=self.id, body={"by": by}))

    @handles(AioCounted)
    def _counted(self, event: Event) -> None:
        self.total += int(event.body["by"])


def new_id() -> str:
    return str(uuid.uuid4())


def counted(agg: str | None = None, by: int = 1) -> AioCounted:
    return AioCounted(aggregate_id=agg or new_id(), body={"by": by})


async def opened(spec: StoreSpec) -> AsyncEventStore:
    """An async store on the spec's data, set up (a memory store is a fresh one)."""
    store = open_async_store(spec.url, schema=spec.schema)
    await store.setup()
    return store
