"""Snapshots: a backend keeps the newest snapshot per aggregate and type, returns it with
the events after it, and lists and drops them (schema 2)."""

from __future__ import annotations

import pytest

from esctl_lib.stores.base import EventStore, Snapshot
from esctl_lib.testing.contract.base import ContractBase, added, new_id

_TYPE = "conf.aggregates:Thing"


def _history(store: EventStore, count: int) -> str:
    agg = new_id()
    store.append([added(agg, i=i) for i in range(1, count + 1)], expected_version=0)
    return agg


def _snap(agg: str, version: int, *, snapshot_version: int = 1, kind: str = _TYPE,
          **state: object) -> Snapshot:
    return Snapshot(agg, kind, version, snapshot_version, {"v": version, **state}, 1000.0 + version)


class SnapshotContract(ContractBase):
    def test_no_snapshot_gives_the_whole_history(self, store: EventStore) -> None:
        agg = _history(store, 3)
        snapshot, tail = store.read_from_snapshot(agg, _TYPE, 1)
        assert snapshot is None
        assert [e.version for e in tail] == [1, 2, 3]
        assert store.load_snapshot(agg, _TYPE, 1) is None
        assert store.read_from_snapshot(new_id(), _TYPE, 1) == (None, [])

    def test_a_snapshot_comes_back_with_the_events_after_it(self, store: EventStore) -> None:
        agg = _history(store, 5)
        store.save_snapshot(_snap(agg, 3, nested={"a": [1, 2.5, None, True, "é"]}))
        snapshot, tail = self.second_store(store).read_from_snapshot(agg, _TYPE, 1)
        assert snapshot is not None
        assert (snapshot.aggregate_id, snapshot.aggregate_type, snapshot.version,
                snapshot.snapshot_version) == (agg, _TYPE, 3, 1)
        assert snapshot.state == {"v": 3, "nested": {"a": [1, 2.5, None, True, "é"]}}
        assert snapshot.created_at == pytest.approx(1003.0)
        assert [e.version for e in tail] == [4, 5]
        assert [e.body["i"] for e in tail] == [4, 5]
        assert store.read_from_snapshot(agg, _TYPE, 1, tail=False) == (snapshot, [])

    def test_a_snapshot_at_the_head_has_an_empty_tail(self, store: EventStore) -> None:
        agg = _history(store, 4)
        store.save_snapshot(_snap(agg, 4))
        snapshot, tail = store.read_from_snapshot(agg, _TYPE, 1)
        assert snapshot is not None and snapshot.version == 4 and tail == []

    def test_only_the_asked_snapshot_version_and_type_are_found(self, store: EventStore) -> None:
        agg = _history(store, 4)
        store.save_snapshot(_snap(agg, 2))
        store.save_snapshot(_snap(agg, 3, kind="conf.aggregates:Other"))
        snapshot, tail = store.read_from_snapshot(agg, _TYPE, 2)
        assert snapshot is None and [e.version for e in tail] == [1, 2, 3, 4]
        other = store.load_snapshot(agg, "conf.aggregates:Other", 1)
        assert other is not None and other.version == 3
        mine = store.load_snapshot(agg, _TYPE, 1)
        assert mine is not None and mine.version == 2

    def test_the_newest_snapshot_wins_and_a_new_shape_replaces_an_old_one(
        self, store: EventStore,
    ) -> None:
        agg = _history(store, 9)
        store.save_snapshot(_snap(agg, 6))
        store.save_snapshot(_snap(agg, 3))  # older: ignored
        found = store.load_snapshot(agg, _TYPE, 1)
        assert found is not None and found.version == 6
        store.save_snapshot(_snap(agg, 9))
        found = store.load_snapshot(agg, _TYPE, 1)
        assert found is not None and found.version == 9
        store.save_snapshot(_snap(agg, 2, snapshot_version=2))  # another shape: replaces
        assert store.load_snapshot(agg, _TYPE, 1) is None
        found = store.load_snapshot(agg, _TYPE, 2)
        assert found is not None and found.version == 2

    def test_a_snapshot_in_a_transaction_commits_or_rolls_back_with_it(
        self, store: EventStore,
    ) -> None:
        agg = _history(store, 2)

        class Boom(Exception):
            pass

        with pytest.raises(Boom), store.transaction() as tx:
            tx.append([added(agg, i=3)], expected_version=2)
            tx.save_snapshot(_snap(agg, 3))
            raise Boom
        assert store.load_snapshot(agg, _TYPE, 1) is None
        with store.transaction() as tx:
            tx.append([added(agg, i=3)], expected_version=2)
            tx.save_snapshot(_snap(agg, 3))
        found = store.load_snapshot(agg, _TYPE, 1)
        assert found is not None and found.version == 3

    def test_snapshots_are_listed_and_dropped_by_type(self, store: EventStore) -> None:
        assert store.snapshots() == []
        assert store.drop_snapshots() == 0
        a, b, c = (_history(store, 2) for _ in range(3))
        store.save_snapshot(_snap(a, 1))
        store.save_snapshot(_snap(b, 2, pad="x" * 500))
        store.save_snapshot(_snap(c, 2, kind="conf.aggregates:Other"))
        infos = store.snapshots()
        assert [(i.aggregate_type, i.count) for i in infos] == [
            ("conf.aggregates:Other", 1), (_TYPE, 2)]
        assert infos[1].newest == pytest.approx(1002.0)
        assert infos[1].bytes > 500 > infos[0].bytes > 0
        assert store.drop_snapshots(_TYPE) == 2
        assert [i.aggregate_type for i in store.snapshots()] == ["conf.aggregates:Other"]
        assert store.read_from_snapshot(b, _TYPE, 1)[0] is None
        assert store.drop_snapshots() == 1
        assert store.snapshots() == []
