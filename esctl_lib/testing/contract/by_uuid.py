"""``read_by_uuids``: events found by uuid, as idempotent commands look them up."""

from __future__ import annotations

from esctl_lib.stores.base import EventStore
from esctl_lib.testing.contract.base import ContractBase, added, new_id
from esctl_lib.testing.contract.events import ConfItemAdded


class ReadByUuidContract(ContractBase):
    """What ``read_by_uuids`` returns."""

    def test_read_by_uuids_returns_the_stored_events_in_id_order(
        self, store: EventStore
    ) -> None:
        agg = new_id()
        stored = store.append([added(agg, n=1), ConfItemAdded(aggregate_id=agg, body={"n": 2})])
        other = store.append([added()])[0]
        found = store.read_by_uuids([other.uuid, stored[1].uuid, stored[0].uuid])
        assert [e.id for e in found] == [stored[0].id, stored[1].id, other.id]
        assert [(e.uuid, e.version, e.body) for e in found[:2]] == [
            (stored[0].uuid, 1, {"n": 1}), (stored[1].uuid, 2, {"n": 2})]

    def test_read_by_uuids_leaves_out_unknown_and_malformed_uuids(
        self, store: EventStore
    ) -> None:
        stored = store.append([added()])[0]
        found = store.read_by_uuids([new_id(), "not a uuid", stored.uuid.upper()])
        assert [e.uuid for e in found] == [stored.uuid]
        assert store.read_by_uuids([]) == []
