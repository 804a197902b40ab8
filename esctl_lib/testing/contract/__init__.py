"""The event store contract: every property a backend must hold, as pytest cases.

Subclass :class:`EventStoreContract` in a test module (name the class ``Test...`` so pytest
collects it) and define ``make_store``; see :mod:`esctl_lib.testing` for the snippet.
"""

from __future__ import annotations

import pytest

# Plain asserts in the contract's cases explain themselves like a test module's own.
pytest.register_assert_rewrite(
    *(f"esctl_lib.testing.contract.{m}" for m in ("appends", "base", "parking", "reads",
                                                  "streams", "trackers"))
)

# isort: split
from esctl_lib.testing.contract.appends import (
    AppendContract,
    ExpectedVersionContract,
    RefusalContract,
)
from esctl_lib.testing.contract.base import ContractBase
from esctl_lib.testing.contract.events import ConfItemAdded, ConfItemRemoved, ConfRareThing
from esctl_lib.testing.contract.parking import ParkingContract
from esctl_lib.testing.contract.reads import IsolationContract, ReadContract
from esctl_lib.testing.contract.streams import ConcurrentWritersContract, SubscribeContract
from esctl_lib.testing.contract.trackers import TrackerContract, TransactionContract

__all__ = [
    "ConfItemAdded",
    "ConfItemRemoved",
    "ConfRareThing",
    "ContractBase",
    "EventStoreContract",
]


class EventStoreContract(
    AppendContract,
    RefusalContract,
    ExpectedVersionContract,
    ReadContract,
    IsolationContract,
    TransactionContract,
    TrackerContract,
    SubscribeContract,
    ConcurrentWritersContract,
    ParkingContract,
):
    """Every case of the store contract. Hooks (see :class:`ContractBase`):

    - ``make_store()`` (required): a fresh, empty store; the contract calls ``setup()``.
    - ``open_again()``: another store object on the same data, or None (the default).
    - ``store_opener()``: a picklable callable opening the same data in another process,
      or None (the default: concurrent writers run as threads).
    - ``drop_store()``: clean up after a test, once the stores are closed.
    """
