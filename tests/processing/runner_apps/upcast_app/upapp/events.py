"""The current events."""

from __future__ import annotations

from esctl_lib import Event


class ItemAdded(Event, type_name="up_item_added"):
    """An item was added. Body: ``name``."""
