"""Turning PostgreSQL rows into events.

Rows are selected in event field order with ``body`` and ``metadata`` as JSON text, so
``EventRegistry.decode_many`` takes them as they come: no per-row work here, and a body is
parsed only when someone reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from esctl_lib.events import Event, EventRegistry


def decode_rows(registry: EventRegistry, rows: Sequence[tuple[Any, ...]]) -> list[Event]:
    """Events from rows of (id, uuid, aggregate_id, type, body text, version, created_at,
    correlation_id, causation_id, metadata text or None)."""
    return registry.decode_many(rows)


def make_event(
    cls: type[Event], id_: int, uuid: str, aggregate_id: str, type_: str, body: dict[str, Any],
    version: int, created_at: Any, correlation_id: str | None, causation_id: str | None,
    metadata: dict[str, Any],
) -> Event:
    """An event of ``cls`` from trusted, already-encoded values."""
    return cls._trusted((id_, uuid, aggregate_id, type_, body, version, created_at,
                         correlation_id, causation_id, metadata))
