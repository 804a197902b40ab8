"""Appending: ids, uuids, versions, times, bodies, and what a backend must refuse."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from esctl_lib.errors import ConcurrencyError, DuplicateEventError, InvalidEventError, SerializationError
from esctl_lib.events import Event
from esctl_lib.stores.base import EventStore
from esctl_lib.testing.contract.base import ContractBase, added, new_id
from esctl_lib.testing.contract.events import ConfItemAdded


class AppendContract(ContractBase):
    """What ``append`` stores and returns."""

    def test_three_appends_get_ids_one_two_three(self, store: EventStore) -> None:
        stored = [store.append([added()])[0] for _ in range(3)]
        assert [e.id for e in stored] == [1, 2, 3]
        assert [e.id for e in store.read_after(0)] == [1, 2, 3]

    def test_a_caller_supplied_uuid_is_kept_lower_case(self, store: EventStore) -> None:
        given = str(uuid.uuid4()).upper()
        store.append([ConfItemAdded(aggregate_id=new_id(), uuid=given)])
        assert store.read_after(0)[0].uuid == given.lower()

    def test_a_missing_uuid_is_generated(self, store: EventStore) -> None:
        stored = store.append([added()])[0]
        assert uuid.UUID(stored.uuid)

    def test_a_batch_of_three_gets_contiguous_versions(self, store: EventStore) -> None:
        agg = new_id()
        stored = store.append([added(agg), added(agg), added(agg)])
        assert [e.version for e in stored] == [1, 2, 3]
        assert [e.version for e in store.read_aggregate(agg)] == [1, 2, 3]

    def test_a_second_batch_continues_the_versions(self, store: EventStore) -> None:
        agg = new_id()
        store.append([added(agg), added(agg)])
        stored = store.append([added(agg), added(agg)])
        assert [e.version for e in stored] == [3, 4]

    def test_a_batch_gets_consecutive_ids_in_version_order(self, store: EventStore) -> None:
        agg = new_id()
        stored = store.append([added(agg, n=n) for n in range(5)], expected_version=0)
        read = store.read_aggregate(agg)
        assert [e.id for e in stored] == [e.id for e in read] == [1, 2, 3, 4, 5]
        assert [e.body["n"] for e in read] == [0, 1, 2, 3, 4]

    def test_bodies_round_trip_with_decimal_datetime_and_nesting(self, store: EventStore) -> None:
        when = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
        body = {"price": Decimal("10.10"), "at": when, "nested": {"list": [1, "a", {"b": None}]},
                "flag": True, "ratio": 0.5, "text": "héllo"}
        store.append([ConfItemAdded(aggregate_id=new_id(), body=body)])
        read = store.read_after(0)[0].body
        assert read == {"price": "10.10", "at": "2024-05-06T07:08:09.123456+00:00",
                        "nested": {"list": [1, "a", {"b": None}]}, "flag": True, "ratio": 0.5,
                        "text": "héllo"}
        assert Decimal(read["price"]) == Decimal("10.10")
        assert dt.datetime.fromisoformat(read["at"]) == when

    def test_append_returns_what_a_read_returns(self, store: EventStore) -> None:
        stored = store.append([added(n=Decimal("1.5"))])[0]
        read = store.read_after(0)[0]
        assert read.to_dict() == stored.to_dict()

    def test_created_at_is_kept_when_given(self, store: EventStore) -> None:
        when = dt.datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
        store.append([ConfItemAdded(aggregate_id=new_id(), created_at=when)])
        assert store.read_after(0)[0].created_at == when

    def test_a_batch_keeps_given_times_and_fills_in_the_missing_ones(self, store: EventStore) -> None:
        when = dt.datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
        agg = new_id()
        stored = store.append([ConfItemAdded(aggregate_id=agg),
                               ConfItemAdded(aggregate_id=agg, created_at=when),
                               ConfItemAdded(aggregate_id=agg)])
        read = store.read_after(0)
        assert [e.to_dict() for e in read] == [e.to_dict() for e in stored]
        assert read[1].created_at == when
        assert read[0].created_at == read[2].created_at != when

    def test_created_at_is_filled_in_utc_when_missing(self, store: EventStore) -> None:
        before = dt.datetime.now(dt.UTC)
        store.append([added()])
        created = store.read_after(0)[0].created_at
        assert created is not None and created.utcoffset() == dt.timedelta(0)
        assert before - dt.timedelta(seconds=1) <= created <= dt.datetime.now(dt.UTC)

    def test_correlation_causation_and_metadata_are_kept(self, store: EventStore) -> None:
        corr, caus = new_id(), new_id()
        store.append([ConfItemAdded(aggregate_id=new_id(), correlation_id=corr, causation_id=caus,
                                    metadata={"tenant": "acme"})])
        event = store.read_after(0)[0]
        assert (event.correlation_id, event.causation_id) == (corr, caus)
        assert event.metadata == {"tenant": "acme"}

    def test_metadata_and_causation_round_trip_in_a_batch(self, store: EventStore) -> None:
        agg, cause = new_id(), new_id()
        store.append([ConfItemAdded(aggregate_id=agg, causation_id=cause,
                                    metadata={"tenant": "t1", "n": n}) for n in range(2)])
        read = store.read_after(0)
        assert [e.metadata for e in read] == [{"tenant": "t1", "n": 0}, {"tenant": "t1", "n": 1}]
        assert {e.causation_id for e in read} == {cause}

    def test_unknown_stored_types_read_back_as_plain_events(self, store: EventStore) -> None:
        store.append([Event(aggregate_id=new_id(), type="conf_never_registered", body={"a": 1})])
        event = store.read_after(0)[0]
        assert type(event) is Event
        assert event.type == "conf_never_registered"

    def test_existing_uuids(self, store: EventStore) -> None:
        stored = store.append([added()])[0]
        assert store.existing_uuids([stored.uuid, new_id()]) == {stored.uuid}


class RefusalContract(ContractBase):
    """What ``append`` refuses, on every backend alike, writing nothing."""

    def test_events_of_two_aggregates_in_one_append_are_rejected(self, store: EventStore) -> None:
        with pytest.raises(InvalidEventError, match="one aggregate"):
            store.append([added(), added()])
        assert store.latest_position() == 0

    def test_an_empty_append_is_rejected(self, store: EventStore) -> None:
        with pytest.raises(InvalidEventError):
            store.append([])

    def test_an_unserializable_body_is_rejected_naming_the_key(self, store: EventStore) -> None:
        agg = new_id()
        with pytest.raises(SerializationError, match=r"\$\.outer\.bad"):
            store.append([added(agg), ConfItemAdded(aggregate_id=agg,
                                                     body={"outer": {"bad": object()}})])
        assert store.latest_position() == 0

    def test_a_duplicate_uuid_is_rejected_and_writes_nothing(self, store: EventStore) -> None:
        first = store.append([added()])[0]
        agg = new_id()
        with pytest.raises(DuplicateEventError):
            store.append([added(agg), ConfItemAdded(aggregate_id=agg, uuid=first.uuid)])
        assert store.latest_position() == 1
        assert store.aggregate_version(agg) == 0

    def test_a_duplicate_uuid_error_names_the_uuid(self, store: EventStore) -> None:
        first = store.append([added()])[0]
        with pytest.raises(DuplicateEventError, match=first.uuid):
            store.append([ConfItemAdded(aggregate_id=new_id(), uuid=first.uuid)])

    @pytest.mark.parametrize("same_uuid", [False, True])
    def test_a_first_event_for_an_aggregate_with_events_is_a_concurrency_error(
        self, store: EventStore, same_uuid: bool
    ) -> None:
        """Expected version 0 on an aggregate that has an event, with a new uuid or with
        that event's own uuid (a version that moved is named before a taken uuid)."""
        first = store.append([added()], expected_version=0)[0]
        again = ConfItemAdded(aggregate_id=first.aggregate_id,
                              uuid=first.uuid if same_uuid else None)
        with pytest.raises(ConcurrencyError) as caught:
            store.append([again], expected_version=0)
        assert (caught.value.expected, caught.value.actual) == (0, 1)
        assert store.latest_position() == 1

    @pytest.mark.parametrize("expected", [0, 5])
    def test_a_refused_expected_version_takes_no_event_id(
        self, store: EventStore, expected: int
    ) -> None:
        """A wrong expected version (too low at 0, or too high) writes nothing and uses no
        id: the next event's id follows the last one stored."""
        first = store.append([added()], expected_version=0)[0]
        with pytest.raises(ConcurrencyError):
            store.append([ConfItemAdded(aggregate_id=first.aggregate_id)],
                         expected_version=expected)
        assert first.id is not None
        assert store.append([added()], expected_version=0)[0].id == first.id + 1

    def test_a_first_event_with_a_stored_uuid_is_a_duplicate(self, store: EventStore) -> None:
        first = store.append([added()], expected_version=0)[0]
        with pytest.raises(DuplicateEventError, match=first.uuid):
            store.append([ConfItemAdded(aggregate_id=new_id(), uuid=first.uuid)],
                         expected_version=0)
        assert store.latest_position() == 1

    def _refused(self, store: EventStore, match: str, **fields: Any) -> None:
        agg = new_id()
        with pytest.raises(InvalidEventError, match=match):
            store.append([added(agg), ConfItemAdded(aggregate_id=agg, **fields)])
        assert store.latest_position() == 0

    def test_a_nul_character_in_a_body_value_is_refused_naming_the_field(
        self, store: EventStore
    ) -> None:
        self._refused(store, "note", body={"outer": {"note": "a\u0000b"}})

    def test_a_nul_character_in_a_body_key_is_refused_naming_the_field(
        self, store: EventStore
    ) -> None:
        self._refused(store, "outer", body={"outer": {"no\u0000te": 1}})

    def test_a_nul_character_in_a_metadata_value_is_refused_naming_the_field(
        self, store: EventStore
    ) -> None:
        self._refused(store, "tenant", metadata={"tenant": "a\u0000b"})

    def test_a_nul_character_in_a_metadata_key_is_refused_naming_the_field(
        self, store: EventStore
    ) -> None:
        self._refused(store, "metadata", metadata={"ten\u0000ant": "acme"})

    def test_a_lone_surrogate_is_refused_naming_the_field(self, store: EventStore) -> None:
        self._refused(store, "title", body={"title": "half \ud800 a pair"})

    def test_an_integer_beyond_the_stated_bound_is_refused_naming_the_field(
        self, store: EventStore
    ) -> None:
        self._refused(store, "amount", body={"amount": 2**63})

    @pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
    def test_a_number_that_is_not_finite_is_refused_naming_the_field(
        self, store: EventStore, number: float
    ) -> None:
        self._refused(store, "ratio", body={"ratio": number})

    def test_a_body_nested_deeper_than_the_stated_limit_is_refused(
        self, store: EventStore
    ) -> None:
        deep: dict[str, Any] = {}
        inner = deep
        for _ in range(200):
            inner["d"] = {}
            inner = inner["d"]
        self._refused(store, "deep", body=deep)

    def test_one_uuid_twice_in_one_append_is_named(self, store: EventStore) -> None:
        agg, twice = new_id(), new_id()
        with pytest.raises(DuplicateEventError, match=twice):
            store.append([ConfItemAdded(aggregate_id=agg, uuid=twice),
                          ConfItemAdded(aggregate_id=agg, uuid=twice)])
        assert store.latest_position() == 0

    @pytest.mark.parametrize("name", ["evil\nline", "esc\x1b[2J", "Upper", ""])
    def test_an_untyped_event_with_a_bad_type_name_is_refused(
        self, store: EventStore, name: str
    ) -> None:
        with pytest.raises(InvalidEventError, match="type"):
            store.append([Event(type=name, aggregate_id=new_id(), body={})])
        assert store.latest_position() == 0


class ExpectedVersionContract(ContractBase):
    """Optimistic concurrency: ``expected_version`` is the aggregate's version before."""

    def test_new_aggregate_with_expected_zero_gets_version_one(self, store: EventStore) -> None:
        assert store.append([added()], expected_version=0)[0].version == 1

    def test_new_aggregate_with_expected_one_conflicts(self, store: EventStore) -> None:
        agg = new_id()
        with pytest.raises(ConcurrencyError) as caught:
            store.append([added(agg)], expected_version=1)
        assert (caught.value.aggregate_id, caught.value.expected, caught.value.actual) == (agg, 1, 0)
        assert store.latest_position() == 0

    def test_no_expected_version_always_appends(self, store: EventStore) -> None:
        agg = new_id()
        store.append([added(agg)])
        assert store.append([added(agg)], expected_version=None)[0].version == 2

    def test_existing_aggregate_with_stale_version_conflicts(self, store: EventStore) -> None:
        agg = new_id()
        store.append([added(agg), added(agg)])
        with pytest.raises(ConcurrencyError) as caught:
            store.append([added(agg)], expected_version=1)
        assert (caught.value.expected, caught.value.actual) == (1, 2)
        assert store.aggregate_version(agg) == 2

    def test_existing_aggregate_with_current_version_appends_next(self, store: EventStore) -> None:
        agg = new_id()
        store.append([added(agg), added(agg)])
        assert store.append([added(agg)], expected_version=2)[0].version == 3

    def test_a_negative_expected_version_is_rejected(self, store: EventStore) -> None:
        with pytest.raises(InvalidEventError):
            store.append([added()], expected_version=-1)

    def test_a_version_mismatch_inside_a_transaction_leaves_it_usable(
        self, store: EventStore
    ) -> None:
        agg = new_id()
        store.append([added(agg)])
        with store.transaction() as tx:
            with pytest.raises(ConcurrencyError) as caught:
                tx.append([added(agg)], expected_version=0)
            tx.append([added(agg, n=2)], expected_version=1)
        assert (caught.value.expected, caught.value.actual) == (0, 1)
        assert [e.version for e in store.read_aggregate(agg)] == [1, 2]

    def test_an_append_without_expected_version_follows_one_from_another_store(
        self, store: EventStore
    ) -> None:
        agg = new_id()
        store.append([added(agg)])
        assert self.second_store(store).append([added(agg)])[0].version == 2
