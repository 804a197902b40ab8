"""The async repository: :class:`~esctl_lib.repository.Repository` over an async store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from esctl_lib import idempotency
from esctl_lib.aggregates import Aggregate
from esctl_lib.errors import ConcurrencyError, DuplicateEventError
from esctl_lib.events import Event
from esctl_lib.repository import _stamp
from esctl_lib.stores.aio_base import AsyncEventStore

A = TypeVar("A", bound=Aggregate)


class AsyncRepository:
    """Loads and saves aggregates through an :class:`AsyncEventStore`."""

    def __init__(self, store: AsyncEventStore) -> None:
        self.store = store

    async def load(self, aggregate_class: type[A], aggregate_id: Any) -> A:
        """Fold the aggregate's whole history; an unknown id gives a fresh aggregate."""
        return aggregate_class(aggregate_id, await self.store.read_aggregate(aggregate_id))

    async def save(
        self,
        aggregate: Aggregate,
        *,
        correlation_id: Any = None,
        causation_id: Any = None,
        metadata: Mapping[str, Any] | None = None,
        command_id: str | None = None,
    ) -> list[Event]:
        """Append the aggregate's changes with its expected version, as
        :meth:`Repository.save` does; ``command_id`` makes the save idempotent
        (:mod:`esctl_lib.idempotency`): a retry appends nothing and returns the first
        result. On :class:`ConcurrencyError` nothing is written and the changes stay."""
        if not aggregate.changes:
            return []
        events = [_stamp(e, correlation_id, causation_id, metadata) for e in aggregate.changes]
        if command_id is not None:
            events = idempotency.stamp_command(events, command_id)
        expected = aggregate.version - len(events)
        try:
            stored = await self.store.append(events, expected_version=expected)
        except (ConcurrencyError, DuplicateEventError):
            if command_id is None:
                raise
            found = await self.store.read_by_uuids(idempotency.lookup_uuids(events, command_id))
            result = idempotency.first_result(events, found, command_id, self.store.encoder)
            if result is None:
                raise
            stored = result
        aggregate.clear_changes()
        return stored

    async def command_result(self, command_id: str, aggregate_id: Any) -> list[Event] | None:
        """The events command ``command_id`` stored on ``aggregate_id``, or None (see
        :func:`esctl_lib.idempotency.command_result`)."""
        uuid = idempotency.command_event_uuid(command_id, aggregate_id, 0)
        found = await self.store.read_by_uuids([uuid])
        if not found:
            return None
        first = found[0]
        assert first.version is not None
        following = await self.store.read_aggregate(aggregate_id, from_version=first.version + 1)
        return idempotency.collect_result(first, following, command_id)
