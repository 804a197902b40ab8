"""Appending one event by hand (``esctl append``), with every check done before writing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from esctl_lib.errors import UnknownEventTypeError
from esctl_lib.events import Event, EventRegistry
from esctl_lib.operations.records import parse_body
from esctl_lib.stores.base import EventStore


def append_one(
    store: EventStore,
    type_name: str,
    *,
    aggregate_id: str,
    body: str | Mapping[str, Any] = "{}",
    registry: EventRegistry,
    allow_unknown_type: bool = False,
    expected_version: int | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Event:
    """Append one event and return it as stored (with id and version).

    ``body`` is a JSON object, as text or already parsed. The type must be registered in
    ``registry`` unless ``allow_unknown_type``; a registered type builds its own class.
    Raises :class:`InvalidEventError` (bad JSON, body not an object, bad UUID),
    :class:`UnknownEventTypeError`, or :class:`ConcurrencyError` (``expected_version``
    does not match); in every case nothing is written.
    """
    values = parse_body(body) if isinstance(body, str) else dict(body)
    cls = registry.class_for(type_name)
    fields: dict[str, Any] = {
        "aggregate_id": aggregate_id,
        "body": values,
        "correlation_id": correlation_id,
        "causation_id": causation_id,
        "metadata": metadata,
    }
    if cls is None:
        if not allow_unknown_type:
            raise UnknownEventTypeError(type_name)
        event = Event(type=type_name, **fields)
    else:
        event = cls(**fields)
    return store.append([event], expected_version=expected_version)[0]
