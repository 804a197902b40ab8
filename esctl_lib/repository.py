"""The repository: load an aggregate from its history, save its new events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from esctl_lib import idempotency
from esctl_lib.aggregates import Aggregate
from esctl_lib.events import Event, normalize_uuid
from esctl_lib.stores.base import EventStore, Transaction
from esctl_lib.telemetry import traced_save

A = TypeVar("A", bound=Aggregate)


class Repository:
    """Loads and saves aggregates through an event store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def load(self, aggregate_class: type[A], aggregate_id: Any) -> A:
        """Fold the aggregate's whole history; an unknown id gives a fresh aggregate (version 0)."""
        return aggregate_class(aggregate_id, self.store.read_aggregate(aggregate_id))

    @traced_save  # a span per save with the otel extra (esctl_lib/telemetry.py)
    def save(
        self,
        aggregate: Aggregate,
        *,
        correlation_id: Any = None,
        causation_id: Any = None,
        metadata: Mapping[str, Any] | None = None,
        transaction: Transaction | None = None,
        command_id: str | None = None,
    ) -> list[Event]:
        """Append the aggregate's changes with ``expected_version = version - len(changes)``.

        On :class:`ConcurrencyError` nothing is written and the changes stay in place.
        ``correlation_id``/``causation_id``/``metadata`` fill events that lack them.
        With ``transaction``, the append joins that transaction.
        With ``command_id``, the events' uuids derive from it, so a retried command
        appends nothing twice and returns the first result (:mod:`esctl_lib.idempotency`).
        """
        if not aggregate.changes:
            return []
        events = [
            _stamp(e, correlation_id, causation_id, metadata) for e in aggregate.changes
        ]
        if command_id is not None:  # idempotent command: see esctl_lib/idempotency.py
            events = idempotency.stamp_command(events, command_id)
            stored = idempotency.append_command(
                self.store, transaction, events, aggregate.version - len(events), command_id)
            aggregate.clear_changes()
            return stored
        expected = aggregate.version - len(events)
        if transaction is not None:
            stored = transaction.append(events, expected_version=expected)
        else:
            stored = self.store.append(events, expected_version=expected)
        aggregate.clear_changes()
        return stored


def _stamp(
    event: Event, correlation_id: Any, causation_id: Any, metadata: Mapping[str, Any] | None
) -> Event:
    changes: dict[str, Any] = {}
    if correlation_id is not None and event.correlation_id is None:
        changes["correlation_id"] = normalize_uuid(correlation_id, "correlation_id")
    if causation_id is not None and event.causation_id is None:
        changes["causation_id"] = normalize_uuid(causation_id, "causation_id")
    if metadata:
        changes["metadata"] = {**metadata, **event.metadata}
    return event.replace(**changes) if changes else event
