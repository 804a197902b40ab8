"""The repository: load an aggregate from its history, save its new events.

**Snapshots.** For an aggregate class with ``snapshot_every = N`` (or an override from
``[snapshots] every``), :meth:`Repository.load` reads the newest snapshot of the class's
``snapshot_version`` and the events after it in one store call (one round trip on
PostgreSQL) and folds only those; other classes load as before, with no snapshot query.
:meth:`Repository.save` takes a snapshot when the save crosses a multiple of N: the state
is captured and encoded *before* the append, and written *after* it, outside the events'
transaction. A snapshot is a cache: a state that cannot be encoded, or a snapshot write
that fails (a store not yet upgraded, a lost connection), is logged as a warning and never
fails or undoes the save; a snapshot that cannot be restored is ignored with a warning.
With ``transaction=``, the snapshot joins that transaction (in a savepoint on PostgreSQL),
so it commits or rolls back with the events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from esctl_lib import idempotency
from esctl_lib.aggregates import Aggregate
from esctl_lib.errors import EsctlError, SerializationError
from esctl_lib.events import Event, normalize_uuid
from esctl_lib.stores.base import EventStore, Snapshot, Transaction
from esctl_lib.telemetry import traced_save

A = TypeVar("A", bound=Aggregate)
log = logging.getLogger("esctl.repository")


class Repository:
    """Loads and saves aggregates through an event store.

    ``snapshot_every`` overrides classes' ``snapshot_every`` by ``"module:QualName"`` or
    by class name (0 turns snapshots off for that class); an application passes its
    ``[snapshots] every`` here (``Application.repository``).
    """

    def __init__(self, store: EventStore, *,
                 snapshot_every: Mapping[str, int] | None = None) -> None:
        self.store = store
        self.snapshot_every = dict(snapshot_every or {})
        #: Per class: (interval, snapshot type name), worked out once.
        self._plans: dict[type[Aggregate], tuple[int, str]] = {}

    def _plan(self, aggregate_class: type[Aggregate]) -> tuple[int, str]:
        plan = self._plans.get(aggregate_class)
        if plan is None:
            name = aggregate_class.snapshot_type()
            overrides = self.snapshot_every
            every = overrides.get(name, overrides.get(aggregate_class.__name__,
                                                      aggregate_class.snapshot_every))
            plan = self._plans[aggregate_class] = (max(0, int(every or 0)), name)
        return plan

    def snapshot_interval(self, aggregate_class: type[Aggregate]) -> int:
        """How many events apart this repository snapshots ``aggregate_class`` (0: never)."""
        return self._plan(aggregate_class)[0]

    def load(self, aggregate_class: type[A], aggregate_id: Any) -> A:
        """Fold the aggregate's history (from its newest snapshot, when the class takes
        them); an unknown id gives a fresh aggregate (version 0)."""
        every, name = self._plans.get(aggregate_class) or self._plan(aggregate_class)
        if not every:
            return aggregate_class(aggregate_id, self.store.read_aggregate(aggregate_id))
        snapshot, tail = self.store.read_from_snapshot(
            aggregate_id, name, aggregate_class.snapshot_version)
        if snapshot is None:
            return aggregate_class(aggregate_id, tail)
        aggregate = aggregate_class(aggregate_id)
        try:
            aggregate.restore_snapshot(snapshot.state)
        except Exception as e:  # an application's restore: never worse than a full fold
            log.warning("ignored the snapshot of %s %s at version %d: restore_snapshot "
                        "failed: %s: %s", aggregate_class.__name__, aggregate.id,
                        snapshot.version, type(e).__name__, e)
            return aggregate_class(aggregate_id, self.store.read_aggregate(aggregate_id))
        aggregate.version = snapshot.version
        aggregate._fold(tail)
        return aggregate

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

        On :class:`ConcurrencyError` nothing is written (no snapshot either) and the
        changes stay in place. ``correlation_id``/``causation_id``/``metadata`` fill events
        that lack them. With ``transaction``, the append (and a snapshot) joins that
        transaction. With ``command_id``, the events' uuids derive from it, so a retried
        command appends nothing twice and returns the first result
        (:mod:`esctl_lib.idempotency`).
        """
        if not aggregate.changes:
            return []
        if correlation_id is None and causation_id is None and not metadata:
            events = list(aggregate.changes)  # nothing to fill in
        else:
            events = [
                _stamp(e, correlation_id, causation_id, metadata) for e in aggregate.changes
            ]
        expected = aggregate.version - len(events)
        snapshot = self._snapshot_due(aggregate, expected)
        if command_id is not None:  # idempotent command: see esctl_lib/idempotency.py
            events = idempotency.stamp_command(events, command_id)
            stored = idempotency.append_command(
                self.store, transaction, events, expected, command_id)
            if snapshot is not None:
                _write_snapshot(self.store.save_snapshot if transaction is None
                                else getattr(transaction, "save_snapshot", None), snapshot)
        elif transaction is not None:
            stored = transaction.append(events, expected_version=expected)
            if snapshot is not None:
                _write_snapshot(getattr(transaction, "save_snapshot", None), snapshot)
        else:
            stored = self.store.append(events, expected_version=expected)
            if snapshot is not None:
                _write_snapshot(self.store.save_snapshot, snapshot)
        aggregate.clear_changes()
        return stored

    def _snapshot_due(self, aggregate: Aggregate, before: int) -> Snapshot | None:
        """The snapshot to write when this save crosses a multiple of the interval."""
        cls = type(aggregate)
        every, name = self._plans.get(cls) or self._plan(cls)
        if not every or aggregate.version // every == before // every:
            return None
        try:
            state = aggregate.snapshot_state()
            encoded = self.store.encoder.encode_body(state)
            if cls.snapshot_state is Aggregate.snapshot_state:
                _check_round_trip(state, encoded)
        except SerializationError as e:
            log.warning("no snapshot of %s %s at version %d: %s (override snapshot_state() "
                        "and restore_snapshot() to keep it)", cls.__name__, aggregate.id,
                        aggregate.version, e)
            return None
        return Snapshot(aggregate.id, name, aggregate.version,
                        cls.snapshot_version, encoded, time.time())


def _check_round_trip(state: Mapping[str, Any], encoded: Mapping[str, Any]) -> None:
    """The default state must come back from JSON as it is: name the first field that
    would not (a set, a tuple, a Decimal, a date ... turned into a list or a string)."""
    for key, value in state.items():
        _check_nested(key, value, encoded.get(key))


def _check_nested(path: str, value: Any, encoded: Any) -> None:
    if type(value) is not type(encoded) or (not isinstance(value, dict | list)
                                            and value != encoded):
        raise SerializationError(
            f"state field {path!r} holds {type(value).__name__}, which a snapshot would "
            f"restore as {type(encoded).__name__}", path=f"$.{path}")
    if isinstance(value, dict):
        for k, item in value.items():
            _check_nested(f"{path}.{k}", item, encoded[k])
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_nested(f"{path}[{i}]", item, encoded[i])


def _write_snapshot(write: Callable[[Snapshot], None] | None, snapshot: Snapshot) -> None:
    if write is None:  # a transaction wrapper without snapshots: the next crossing will do
        log.debug("no snapshot of %s %s at version %d: the transaction cannot keep one",
                  snapshot.aggregate_type, snapshot.aggregate_id, snapshot.version)
        return
    try:
        write(snapshot)
    except EsctlError as e:  # a cache: the events are saved, whatever happens here
        log.warning("no snapshot of %s %s at version %d: %s", snapshot.aggregate_type,
                    snapshot.aggregate_id, snapshot.version, e)


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
