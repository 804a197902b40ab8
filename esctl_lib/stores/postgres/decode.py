"""Turning PostgreSQL rows into events.

Rows are selected in event field order with ``body`` and ``metadata`` as JSON text. The
bodies of a page are parsed together, by one ``json.loads`` of the joined texts: that
costs about a third of parsing them one by one (lazily or not) and keeps the per-event
work to building the event (``EventRegistry.decode_many``: classes, aliases, upcasters).
Metadata, usually empty, stays text until read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from esctl_lib.errors import StoreError
from esctl_lib.events import Event, EventField, EventRegistry

_loads = json.loads
_BODY = EventField.BODY


def decode_rows(registry: EventRegistry, rows: Sequence[tuple[Any, ...]]) -> list[Event]:
    """Events from rows of (id, uuid, aggregate_id, type, body text, version, created_at,
    correlation_id, causation_id, metadata text or None)."""
    if not rows:
        return []
    try:
        bodies = _loads("[" + ",".join([r[_BODY] for r in rows]) + "]")
    except (ValueError, RecursionError) as e:
        # JSON written by another tool may nest deeper, or hold longer integers, than
        # Python's parser takes: a store error naming the page, never the parser's own.
        raise StoreError(
            f"cannot decode the stored bodies of events {rows[0][0]}..{rows[-1][0]}: "
            f"{type(e).__name__}: {str(e)[:200]}") from e
    return registry.decode_many([
        (i, u, a, t, body, v, c, co, ca, m)
        for (i, u, a, t, _, v, c, co, ca, m), body in zip(rows, bodies, strict=True)
    ])
