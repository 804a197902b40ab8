"""Turning events into the values a backend stores (shared by every backend)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from esctl_lib.events import Event, utc_now
from esctl_lib.serialization import BodyEncoder


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    """An event's fields encoded for storage; ``body`` is the JSON-able form of the body."""

    event_class: type[Event]
    uuid: str
    type: str
    body: dict[str, Any]
    body_json: str
    created_at: dt.datetime
    correlation_id: str | None
    causation_id: str | None
    metadata: dict[str, Any]
    metadata_json: str | None

    @property
    def created_at_iso(self) -> str:
        """``created_at`` as ISO 8601 in UTC with microseconds (sorts as text)."""
        return self.created_at.isoformat(timespec="microseconds")


def prepare_events(events: Sequence[Event], encoder: BodyEncoder) -> list[PreparedEvent]:
    """Encode bodies and metadata (raising SerializationError naming the key) and fill times."""
    now = utc_now()
    out = []
    for event in events:
        body = encoder.encode_body(event.body)
        metadata = encoder.encode_body(event.metadata) if event.metadata else {}
        out.append(
            PreparedEvent(
                event_class=type(event),
                uuid=event.uuid,
                type=event.type,
                body=body,
                body_json=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
                created_at=event.created_at or now,
                correlation_id=event.correlation_id,
                causation_id=event.causation_id,
                metadata=metadata,
                metadata_json=(
                    json.dumps(metadata, separators=(",", ":"), ensure_ascii=False)
                    if metadata
                    else None
                ),
            )
        )
    return out
