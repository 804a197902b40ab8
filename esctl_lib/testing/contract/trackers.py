"""Transactions and trackers: what commits together, and a tracker's moves."""

from __future__ import annotations

import pytest

from esctl_lib.errors import TrackerError
from esctl_lib.stores.base import EventStore
from esctl_lib.testing.contract.base import ContractBase, added, fill, new_id
from esctl_lib.testing.polling import eventually


class TransactionContract(ContractBase):
    """Everything done through one transaction commits together or not at all."""

    def test_a_failing_transaction_writes_nothing(self, store: EventStore) -> None:
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.append([added()])
            tx.set_tracker("conf_proc", 1)
            raise RuntimeError("boom")
        assert store.latest_position() == 0
        assert store.get_tracker("conf_proc") == 0

    def test_a_transaction_commits_events_and_tracker_together(self, store: EventStore) -> None:
        with store.transaction() as tx:
            tx.append([added()])
            tx.set_tracker("conf_proc", 1)
        # Readable once no older writing transaction is open (PostgreSQL's horizon: another
        # session may hold one open for a while).
        eventually(lambda: store.latest_position() == 1, timeout=30,
                   what="the committed event to become readable")
        assert store.get_tracker("conf_proc") == 1

    def test_appends_in_an_open_transaction_are_unseen_until_it_commits(
        self, store: EventStore
    ) -> None:
        # Only another store can look in from outside: inside its own transaction, one
        # store object may well read its own writes.
        reader = self.open_again()
        if reader is not None:
            self._opened.append(reader)
        with store.transaction() as tx:
            tx.append([added()])
            if reader is not None:
                assert reader.read_after(0) == []
                assert reader.latest_position() == 0
        # Committed is not always readable at once from elsewhere: on PostgreSQL a
        # transaction still open on the server holds readers back until it ends.
        after = reader or store
        eventually(lambda: after.latest_position() == 1, timeout=30,
                   what="the committed event to be readable")
        assert [e.id for e in after.read_after(0)] == [1]

    def test_setup_twice_is_harmless(self, store: EventStore) -> None:
        store.append([added()])
        store.setup()
        assert store.latest_position() == 1
        assert store.schema_version() >= 1

    def test_events_and_trackers_are_there_for_another_store_on_the_same_data(
        self, store: EventStore
    ) -> None:
        store.append([added()])
        store.set_tracker("conf_proc", 1)
        again = self.second_store(store)
        assert again.get_tracker("conf_proc") == 1
        eventually(lambda: again.latest_position() == 1, timeout=30,
                   what="the committed event to be readable")
        assert again.schema_version() >= 1


class TrackerContract(ContractBase):
    """A tracker moves forward by ``set_tracker``, by compare-and-set, or anywhere by reset."""

    def test_a_tracker_starts_at_zero(self, store: EventStore) -> None:
        assert store.get_tracker("conf_fresh") == 0

    def test_a_tracker_advances(self, store: EventStore) -> None:
        fill(store)
        store.set_tracker("conf_proc", 4)
        store.set_tracker("conf_proc", 7)
        assert store.get_tracker("conf_proc") == 7
        assert store.trackers()["conf_proc"] == 7

    def test_a_tracker_refuses_to_move_back_by_accident(self, store: EventStore) -> None:
        fill(store)
        store.set_tracker("conf_proc", 7)
        with pytest.raises(TrackerError):
            store.set_tracker("conf_proc", 4)
        assert store.get_tracker("conf_proc") == 7

    def test_a_tracker_resets(self, store: EventStore) -> None:
        fill(store)
        store.set_tracker("conf_proc", 7)
        store.reset_tracker("conf_proc")
        assert store.get_tracker("conf_proc") == 0
        store.reset_tracker("conf_proc", 5)
        assert store.get_tracker("conf_proc") == 5

    def test_every_tracker_is_listed_with_its_position(self, store: EventStore) -> None:
        fill(store)
        store.set_tracker("conf_b", 2)
        store.set_tracker("conf_a", 5)
        assert {k: v for k, v in store.trackers().items() if k.startswith("conf_")} == {
            "conf_a": 5, "conf_b": 2}

    def test_advance_tracker_moves_from_the_expected_position(self, store: EventStore) -> None:
        fill(store)
        with store.transaction() as tx:
            tx.advance_tracker("conf_fence", 0, 3)
        with store.transaction() as tx:
            tx.advance_tracker("conf_fence", 3, 5)
        assert store.get_tracker("conf_fence") == 5

    def test_advance_tracker_from_a_stale_position_fails_and_writes_nothing(
        self, store: EventStore
    ) -> None:
        fill(store)
        store.set_tracker("conf_fence", 4)
        agg = new_id()
        with pytest.raises(TrackerError, match="another instance"), store.transaction() as tx:
            tx.append([added(agg)])
            tx.set_tracker("conf_other", 1)
            tx.advance_tracker("conf_fence", 2, 5)
        assert store.get_tracker("conf_fence") == 4
        assert "conf_other" not in store.trackers()
        assert store.aggregate_version(agg) == 0

    def test_advance_tracker_of_a_new_tracker_from_a_nonzero_position_fails(
        self, store: EventStore
    ) -> None:
        fill(store)
        with pytest.raises(TrackerError), store.transaction() as tx:
            tx.advance_tracker("conf_fence", 2, 5)
        assert store.get_tracker("conf_fence") == 0

    def test_advance_tracker_loses_to_a_move_by_another_store(self, store: EventStore) -> None:
        fill(store)
        store.set_tracker("conf_fence", 2)
        self.second_store(store).set_tracker("conf_fence", 6)
        with pytest.raises(TrackerError), store.transaction() as tx:
            tx.advance_tracker("conf_fence", 2, 4)
        assert store.get_tracker("conf_fence") == 6
