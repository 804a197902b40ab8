"""A processor whose process dies (no exception, no state written) on a marked event."""

from __future__ import annotations

import os

from cliapp.events import ItemAdded
from esctl_lib import Event, Transaction, handles
from esctl_lib.processing import Projector


class Crasher(Projector):
    """Kills its own process on any ItemAdded whose body says ``crash``."""

    name = "cli_crasher"

    @handles(ItemAdded)
    def _added(self, event: Event, tx: Transaction) -> None:
        if event.body.get("crash"):
            os._exit(9)
