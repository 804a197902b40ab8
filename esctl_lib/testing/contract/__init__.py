"""The event store contract: every property a backend must hold, as pytest cases.

Subclass :class:`EventStoreContract` in a test module (name the class ``Test...`` so pytest
collects it) and define ``make_store``; see :mod:`esctl_lib.testing` for the snippet.
"""

from __future__ import annotations

import pytest

# Plain asserts in the contract's cases explain themselves like a test module's own.
pytest.register_assert_rewrite(
    *(f"esctl_lib.testing.contract.{m}" for m in ("appends", "base", "ordering", "parking",
                                                  "reads", "shadows", "streams", "suite",
                                                  "trackers"))
)
pytest.register_assert_rewrite("esctl_lib.testing.contract.by_uuid")

from esctl_lib.testing.contract.base import ContractBase  # noqa: E402
from esctl_lib.testing.contract.events import (  # noqa: E402
    ConfItemAdded,
    ConfItemRemoved,
    ConfRareThing,
)
from esctl_lib.testing.contract.suite import EventStoreContract  # noqa: E402

__all__ = [
    "ConfItemAdded",
    "ConfItemRemoved",
    "ConfRareThing",
    "ContractBase",
    "EventStoreContract",
]
