"""The test app's processors."""

from __future__ import annotations

from cliapp.events import ItemAdded, ItemNoticed, ItemRemoved
from esctl_lib import Event, Transaction, handles
from esctl_lib.processing import Projector, Reactor


class ItemList(Projector):
    """Items currently present, with how often each was added."""

    name = "cli_items"
    tables = {
        "cli_items": "CREATE TABLE IF NOT EXISTS cli_items "
                     "(item_id TEXT PRIMARY KEY, name TEXT NOT NULL, added INTEGER NOT NULL)"
    }

    @handles(ItemAdded)
    def _added(self, event: Event, tx: Transaction) -> None:
        row = tx.select("cli_items", where={"item_id": event.aggregate_id})
        added = row[0]["added"] + 1 if row else 1
        tx.upsert("cli_items", {"item_id": event.aggregate_id, "name": event.body["name"],
                                "added": added}, key=("item_id",))

    @handles(ItemRemoved)
    def _removed(self, event: Event, tx: Transaction) -> None:
        tx.delete("cli_items", where={"item_id": event.aggregate_id})


class Noticer(Reactor):
    """Emits ItemNoticed for every ItemAdded (a side effect, as far as replay is concerned)."""

    name = "cli_noticer"
    emits = (ItemNoticed,)

    @handles(ItemAdded)
    def _added(self, event: Event, tx: Transaction) -> None:
        self.emit(ItemNoticed(aggregate_id=event.aggregate_id, body={"name": event.body["name"]}))


class Exploder(Projector):
    """Fails on any ItemAdded whose body says ``explode``."""

    name = "cli_exploder"

    @handles(ItemAdded)
    def _added(self, event: Event, tx: Transaction) -> None:
        if event.body.get("explode"):
            raise RuntimeError(f"boom on {event.body['name']}")


NOT_A_PROCESSOR = 42
