"""Reading: pages, filters, limits, ``until``, aggregates, counts and positions."""

from __future__ import annotations

import pytest

from esctl_lib.errors import InvalidEventError
from esctl_lib.stores.base import EventStore
from esctl_lib.testing.contract.base import ContractBase, added, fill, new_id
from esctl_lib.testing.contract.events import ConfItemAdded, ConfItemRemoved


class ReadContract(ContractBase):
    """``read_page`` and everything built on it."""

    def test_read_after_a_position_with_a_limit(self, store: EventStore) -> None:
        fill(store)
        assert [e.id for e in store.read_after(2, limit=3)] == [3, 4, 5]

    def test_read_after_filters_by_type(self, store: EventStore) -> None:
        fill(store)
        removed = store.read_after(0, types=["conf_item_removed"])
        assert [e.id for e in removed] == [3, 6, 9]
        assert all(isinstance(e, ConfItemRemoved) for e in removed)

    def test_read_after_with_type_filter_and_limit(self, store: EventStore) -> None:
        fill(store)
        assert [e.id for e in store.read_after(3, types=["conf_item_removed"], limit=1)] == [6]

    def test_a_filtered_page_reports_how_far_it_scanned(self, store: EventStore) -> None:
        fill(store)
        page = store.read_page(0, types=["conf_item_removed"], limit=1000)
        assert [e.id for e in page.events] == [3, 6, 9]
        assert page.end == 10
        assert store.read_page(page.end, types=["conf_item_removed"]).events == []

    def test_a_full_page_ends_at_its_last_event(self, store: EventStore) -> None:
        fill(store)
        page = store.read_page(0, types=["conf_item_removed"], limit=2)
        assert page.end == 6

    def test_a_page_never_passes_until(self, store: EventStore) -> None:
        fill(store)
        page = store.read_page(0, until=4)
        assert [e.id for e in page.events] == [1, 2, 3, 4]
        assert page.end == 4

    def test_a_filtered_page_scans_no_further_than_until(self, store: EventStore) -> None:
        fill(store)
        page = store.read_page(0, types=["conf_item_removed"], until=5)
        assert [e.id for e in page.events] == [3]
        assert page.end <= 5

    def test_until_is_inclusive(self, store: EventStore) -> None:
        fill(store)
        assert [e.id for e in store.iter_range(0, 1)] == [1]
        assert [e.id for e in store.iter_range(1, 2)] == [2]

    def test_read_after_on_an_empty_store_is_empty(self, store: EventStore) -> None:
        assert store.read_after(0) == []
        assert store.read_page(0).end == 0

    def test_reading_past_the_head_is_empty(self, store: EventStore) -> None:
        fill(store)
        assert store.read_after(10) == []
        assert store.read_page(10).end == 10

    def test_latest_position_overall_and_per_type(self, store: EventStore) -> None:
        assert store.latest_position() == 0
        assert store.latest_position(types=["conf_item_removed"]) == 0
        fill(store)
        assert store.latest_position() == 10
        assert store.latest_position(types=["conf_item_removed"]) == 9
        assert store.latest_position(types=["conf_item_added", "conf_item_removed"]) == 9
        assert store.latest_position(types=["nothing_like_this"]) == 0

    def test_count_after_a_position(self, store: EventStore) -> None:
        fill(store)
        assert store.count() == 10
        assert store.count(after=7) == 3
        assert store.count(types=["conf_item_removed"], after=3) == 2

    def test_the_oldest_time_after_a_position_is_that_of_the_next_event(
        self, store: EventStore
    ) -> None:
        events = fill(store)
        assert store.oldest_time_after(2) == events[2].created_at
        assert store.oldest_time_after(10) is None

    def test_read_aggregate_returns_only_that_history(self, store: EventStore) -> None:
        mine, other = new_id(), new_id()
        store.append([added(mine, n=1)])
        store.append([added(other)])
        store.append([added(mine, n=2), added(mine, n=3)])
        history = store.read_aggregate(mine)
        assert [e.body["n"] for e in history] == [1, 2, 3]
        assert [e.version for e in history] == [1, 2, 3]
        assert [e.version for e in store.read_aggregate(mine, from_version=2)] == [2, 3]
        assert store.read_aggregate(new_id()) == []

    def test_read_aggregate_accepts_an_upper_case_id(self, store: EventStore) -> None:
        agg = new_id()
        store.append([added(agg)])
        assert len(store.read_aggregate(agg.upper())) == 1

    def test_a_bad_aggregate_id_is_a_clear_error(self, store: EventStore) -> None:
        with pytest.raises(InvalidEventError, match="aggregate_id must be a UUID"):
            store.read_aggregate("not-a-uuid")

    def test_range_iteration_without_filter_stops_at_its_end(self, store: EventStore) -> None:
        fill(store)
        assert [e.id for e in store.iter_range(2, 7, page_size=2)] == [3, 4, 5, 6, 7]

    def test_range_iteration_with_filter_never_runs_past_its_end(self, store: EventStore) -> None:
        fill(store)
        got = [e.id for e in store.iter_range(0, 7, types=["conf_item_removed"], page_size=1)]
        assert got == [3, 6]

    def test_range_iteration_defaults_to_the_head(self, store: EventStore) -> None:
        fill(store)
        assert len(list(store.iter_range())) == 10


class IsolationContract(ContractBase):
    """What a caller does to an event object never changes what the store holds."""

    def test_changing_a_nested_list_of_a_read_event_changes_nothing_stored(
        self, store: EventStore
    ) -> None:
        agg = new_id()
        store.append([added(agg, tags=["a"], inner={"list": [1]})])
        first = store.read_aggregate(agg)[0]
        first.body["tags"].append("changed")
        first.body["inner"]["list"].append(2)
        assert store.read_aggregate(agg)[0].body == {"tags": ["a"], "inner": {"list": [1]}}
        assert store.read_after(0)[0].body == {"tags": ["a"], "inner": {"list": [1]}}

    def test_changing_a_nested_list_of_an_appended_event_changes_nothing_stored(
        self, store: EventStore
    ) -> None:
        stored = store.append([added(tags=["a"])])[0]
        stored.body["tags"].append("changed")
        assert store.read_after(0)[0].body == {"tags": ["a"]}

    def test_changing_the_body_given_to_append_changes_nothing_stored(
        self, store: EventStore
    ) -> None:
        tags = ["a"]
        store.append([added(tags=tags)])
        tags.append("changed")
        assert store.read_after(0)[0].body == {"tags": ["a"]}

    def test_changing_nested_metadata_of_a_read_event_changes_nothing_stored(
        self, store: EventStore
    ) -> None:
        store.append([ConfItemAdded(aggregate_id=new_id(), metadata={"path": ["x"]})])
        store.read_after(0)[0].metadata["path"].append("changed")
        assert store.read_after(0)[0].metadata == {"path": ["x"]}
