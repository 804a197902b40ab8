"""The test app's events."""

from __future__ import annotations

from esctl_lib import Event


class ItemAdded(Event, type_name="cli_item_added"):
    """An item was added. Body: ``name``, optional ``explode`` (makes Exploder fail)."""


class ItemRemoved(Event, type_name="cli_item_removed"):
    """An item was removed."""


class ItemNoticed(Event, type_name="cli_item_noticed"):
    """The Noticer reactor saw an item being added."""
