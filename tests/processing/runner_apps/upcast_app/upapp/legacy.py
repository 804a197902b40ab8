"""Upgrades the legacy ``up_item_added_v0`` events (body ``title``) to ``up_item_added``.

Only ``[app] events`` imports this module; nothing the projector imports does.
"""

from __future__ import annotations

from esctl_lib import Event, default_registry


def _upgrade(event: Event) -> Event:
    return event.replace(type="up_item_added", body={"name": event.body["title"]})


default_registry.add_upcaster("up_item_added_v0", _upgrade)
