"""Turning events into the values a backend stores (the memory store's append path)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from esctl_lib.events import Event, check_type_name, utc_now
from esctl_lib.serialization import BodyEncoder, validate_body


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    """An event's fields encoded for storage; ``body`` is the JSON-able form of the body."""

    event_class: type[Event]
    uuid: str
    type: str
    body: dict[str, Any]
    created_at: dt.datetime
    correlation_id: str | None
    causation_id: str | None
    metadata: dict[str, Any]


def prepare_events(events: Sequence[Event], encoder: BodyEncoder) -> list[PreparedEvent]:
    """Encode bodies and metadata (raising SerializationError naming the key), check them
    against :func:`~esctl_lib.serialization.validate_body`, and fill in times."""
    now = utc_now()
    out = []
    for event in events:
        if event.__class__ is Event:  # a class's own name was checked when it registered
            check_type_name(event.type)
        body = encoder.encode_body(event.body)
        validate_body(body)
        metadata = encoder.encode_body(event.metadata) if event.metadata else {}
        if metadata:
            validate_body(metadata, field="metadata")
        out.append(
            PreparedEvent(
                event_class=type(event),
                uuid=event.uuid,
                type=event.type,
                body=body,
                created_at=event.created_at or now,
                correlation_id=event.correlation_id,
                causation_id=event.causation_id,
                metadata=metadata,
            )
        )
    return out
