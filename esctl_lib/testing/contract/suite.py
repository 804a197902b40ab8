"""The whole contract: one class made of the topic classes, hooks in :class:`ContractBase`."""

from __future__ import annotations

from typing import ClassVar

from esctl_lib.testing.contract.appends import (
    AppendContract,
    ExpectedVersionContract,
    RefusalContract,
)
from esctl_lib.testing.contract.by_uuid import ReadByUuidContract
from esctl_lib.testing.contract.ordering import OrderingContract
from esctl_lib.testing.contract.parking import ParkingContract
from esctl_lib.testing.contract.reads import IsolationContract, ReadContract
from esctl_lib.testing.contract.shadows import ShadowTablesContract
from esctl_lib.testing.contract.snapshots import SnapshotContract
from esctl_lib.testing.contract.streams import ConcurrentWritersContract, SubscribeContract
from esctl_lib.testing.contract.trace import TraceContract
from esctl_lib.testing.contract.trackers import TrackerContract, TransactionContract


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
    OrderingContract,
    ShadowTablesContract,
    TraceContract,
    ReadByUuidContract,
    SnapshotContract,
):
    """Every case of the store contract. Hooks (see :class:`ContractBase`):

    - ``make_store()`` (required): a fresh, empty store; the contract calls ``setup()``.
    - ``open_again()``: another store object on the same data, or None (the default).
    - ``store_opener()``: a picklable callable opening the same data in another process,
      or None (the default: concurrent writers run as threads).
    - ``drop_store()``: clean up after a test, once the stores are closed.
    - ``commit_out_of_order(store, first, second)``: commit two events out of id order
      where the backend can (PostgreSQL), or None (the default).
    """

    #: Cases that take seconds (writers racing); a project's lanes may deselect them.
    slow_cases: ClassVar[frozenset[str]] = frozenset({
        "test_concurrent_writers_lose_nothing_and_never_duplicate_a_version",
    })
