"""A projection of item names (it imports the current events only)."""

from __future__ import annotations

from esctl_lib import Event, Transaction, handles
from esctl_lib.processing import Projector
from upapp.events import ItemAdded


class ItemNames(Projector):
    """One row per item added."""

    name = "up_item_names"
    tables = {
        "up_item_names": "CREATE TABLE IF NOT EXISTS up_item_names "
                         "(item_id TEXT PRIMARY KEY, name TEXT NOT NULL)"
    }

    @handles(ItemAdded)
    def _added(self, event: Event, tx: Transaction) -> None:
        tx.upsert("up_item_names", {"item_id": event.aggregate_id, "name": event.body["name"]},
                  key=("item_id",))
