"""The event store contract: one suite, run unchanged against every backend."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from esctl_lib import (
    ConcurrencyError,
    DuplicateEventError,
    Event,
    EventStore,
    InvalidEventError,
    SerializationError,
    TrackerError,
)
from tests.backends import StoreSpec
from tests.conformance.events import ConfItemAdded, ConfItemRemoved, ConfRareThing


def new_id() -> str:
    return str(uuid.uuid4())


def added(agg: str | None = None, **body: object) -> ConfItemAdded:
    return ConfItemAdded(aggregate_id=agg or new_id(), body=body)


# -- appending --------------------------------------------------------------------------


def test_three_appends_get_ids_one_two_three(store: EventStore) -> None:
    stored = [store.append([added()])[0] for _ in range(3)]
    assert [e.id for e in stored] == [1, 2, 3]
    assert [e.id for e in store.read_after(0)] == [1, 2, 3]


def test_a_caller_supplied_uuid_is_kept_lower_case(store: EventStore) -> None:
    given = str(uuid.uuid4()).upper()
    store.append([ConfItemAdded(aggregate_id=new_id(), uuid=given)])
    assert store.read_after(0)[0].uuid == given.lower()


def test_a_missing_uuid_is_generated(store: EventStore) -> None:
    stored = store.append([added()])[0]
    assert uuid.UUID(stored.uuid)


def test_a_batch_of_three_gets_contiguous_versions(store: EventStore) -> None:
    agg = new_id()
    stored = store.append([added(agg), added(agg), added(agg)])
    assert [e.version for e in stored] == [1, 2, 3]
    assert [e.version for e in store.read_aggregate(agg)] == [1, 2, 3]


def test_a_second_batch_continues_the_versions(store: EventStore) -> None:
    agg = new_id()
    store.append([added(agg), added(agg)])
    stored = store.append([added(agg), added(agg)])
    assert [e.version for e in stored] == [3, 4]


def test_bodies_round_trip_with_decimal_datetime_and_nesting(store: EventStore) -> None:
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


def test_append_returns_what_a_read_returns(store: EventStore) -> None:
    stored = store.append([added(n=Decimal("1.5"))])[0]
    read = store.read_after(0)[0]
    assert read.to_dict() == stored.to_dict()


def test_created_at_is_kept_when_given(store: EventStore) -> None:
    when = dt.datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    store.append([ConfItemAdded(aggregate_id=new_id(), created_at=when)])
    assert store.read_after(0)[0].created_at == when


def test_a_batch_keeps_given_times_and_fills_in_the_missing_ones(store: EventStore) -> None:
    when = dt.datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    agg = new_id()
    stored = store.append([ConfItemAdded(aggregate_id=agg),
                           ConfItemAdded(aggregate_id=agg, created_at=when),
                           ConfItemAdded(aggregate_id=agg)])
    read = store.read_after(0)
    assert [e.to_dict() for e in read] == [e.to_dict() for e in stored]
    assert read[1].created_at == when
    assert read[0].created_at == read[2].created_at != when


def test_created_at_is_filled_in_utc_when_missing(store: EventStore) -> None:
    before = dt.datetime.now(dt.UTC)
    store.append([added()])
    created = store.read_after(0)[0].created_at
    assert created is not None and created.utcoffset() == dt.timedelta(0)
    assert before - dt.timedelta(seconds=1) <= created <= dt.datetime.now(dt.UTC)


def test_correlation_causation_and_metadata_are_kept(store: EventStore) -> None:
    corr, caus = new_id(), new_id()
    store.append([ConfItemAdded(aggregate_id=new_id(), correlation_id=corr, causation_id=caus,
                                metadata={"tenant": "acme"})])
    event = store.read_after(0)[0]
    assert (event.correlation_id, event.causation_id) == (corr, caus)
    assert event.metadata == {"tenant": "acme"}


def test_events_of_two_aggregates_in_one_append_are_rejected(store: EventStore) -> None:
    with pytest.raises(InvalidEventError, match="one aggregate"):
        store.append([added(), added()])
    assert store.latest_position() == 0


def test_an_empty_append_is_rejected(store: EventStore) -> None:
    with pytest.raises(InvalidEventError):
        store.append([])


def test_an_unserializable_body_is_rejected_naming_the_key(store: EventStore) -> None:
    agg = new_id()
    with pytest.raises(SerializationError, match=r"\$\.outer\.bad"):
        store.append([added(agg), ConfItemAdded(aggregate_id=agg,
                                                 body={"outer": {"bad": object()}})])
    assert store.latest_position() == 0


def test_a_duplicate_uuid_is_rejected_and_writes_nothing(store: EventStore) -> None:
    first = store.append([added()])[0]
    agg = new_id()
    with pytest.raises(DuplicateEventError):
        store.append([added(agg), ConfItemAdded(aggregate_id=agg, uuid=first.uuid)])
    assert store.latest_position() == 1
    assert store.aggregate_version(agg) == 0


# -- expected versions ------------------------------------------------------------------


def test_new_aggregate_with_expected_zero_gets_version_one(store: EventStore) -> None:
    assert store.append([added()], expected_version=0)[0].version == 1


def test_new_aggregate_with_expected_one_conflicts(store: EventStore) -> None:
    agg = new_id()
    with pytest.raises(ConcurrencyError) as caught:
        store.append([added(agg)], expected_version=1)
    assert (caught.value.aggregate_id, caught.value.expected, caught.value.actual) == (agg, 1, 0)
    assert store.latest_position() == 0


def test_no_expected_version_always_appends(store: EventStore) -> None:
    agg = new_id()
    store.append([added(agg)])
    assert store.append([added(agg)], expected_version=None)[0].version == 2


def test_existing_aggregate_with_stale_version_conflicts(store: EventStore) -> None:
    agg = new_id()
    store.append([added(agg), added(agg)])
    with pytest.raises(ConcurrencyError) as caught:
        store.append([added(agg)], expected_version=1)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert store.aggregate_version(agg) == 2


def test_existing_aggregate_with_current_version_appends_next(store: EventStore) -> None:
    agg = new_id()
    store.append([added(agg), added(agg)])
    assert store.append([added(agg)], expected_version=2)[0].version == 3


def test_a_negative_expected_version_is_rejected(store: EventStore) -> None:
    with pytest.raises(InvalidEventError):
        store.append([added()], expected_version=-1)


# -- reading ----------------------------------------------------------------------------


def _fill(store: EventStore) -> list[Event]:
    """Ten events: ids 1..10; removed at 3, 6, 9; one rare at 10."""
    out = []
    for i in range(1, 11):
        agg = new_id()
        if i == 10:
            event: Event = ConfRareThing(aggregate_id=agg)
        elif i % 3 == 0:
            event = ConfItemRemoved(aggregate_id=agg)
        else:
            event = ConfItemAdded(aggregate_id=agg, body={"i": i})
        out.extend(store.append([event]))
    return out


def test_read_after_a_position_with_a_limit(store: EventStore) -> None:
    _fill(store)
    assert [e.id for e in store.read_after(2, limit=3)] == [3, 4, 5]


def test_read_after_filters_by_type(store: EventStore) -> None:
    _fill(store)
    removed = store.read_after(0, types=["conf_item_removed"])
    assert [e.id for e in removed] == [3, 6, 9]
    assert all(isinstance(e, ConfItemRemoved) for e in removed)


def test_read_after_with_type_filter_and_limit(store: EventStore) -> None:
    _fill(store)
    assert [e.id for e in store.read_after(3, types=["conf_item_removed"], limit=1)] == [6]


def test_a_filtered_page_reports_how_far_it_scanned(store: EventStore) -> None:
    _fill(store)
    page = store.read_page(0, types=["conf_item_removed"], limit=1000)
    assert [e.id for e in page.events] == [3, 6, 9]
    assert page.end == 10
    assert store.read_page(page.end, types=["conf_item_removed"]).events == []


def test_a_full_page_ends_at_its_last_event(store: EventStore) -> None:
    _fill(store)
    page = store.read_page(0, types=["conf_item_removed"], limit=2)
    assert page.end == 6


def test_read_after_on_an_empty_store_is_empty(store: EventStore) -> None:
    assert store.read_after(0) == []
    assert store.read_page(0).end == 0


def test_latest_position_overall_and_per_type(store: EventStore) -> None:
    assert store.latest_position() == 0
    assert store.latest_position(types=["conf_item_removed"]) == 0
    _fill(store)
    assert store.latest_position() == 10
    assert store.latest_position(types=["conf_item_removed"]) == 9
    assert store.latest_position(types=["conf_item_added", "conf_item_removed"]) == 9
    assert store.latest_position(types=["nothing_like_this"]) == 0


def test_count_after_a_position(store: EventStore) -> None:
    _fill(store)
    assert store.count() == 10
    assert store.count(after=7) == 3
    assert store.count(types=["conf_item_removed"], after=3) == 2


def test_read_aggregate_returns_only_that_history(store: EventStore) -> None:
    mine, other = new_id(), new_id()
    store.append([added(mine, n=1)])
    store.append([added(other)])
    store.append([added(mine, n=2), added(mine, n=3)])
    history = store.read_aggregate(mine)
    assert [e.body["n"] for e in history] == [1, 2, 3]
    assert [e.version for e in history] == [1, 2, 3]
    assert [e.version for e in store.read_aggregate(mine, from_version=2)] == [2, 3]
    assert store.read_aggregate(new_id()) == []


def test_read_aggregate_accepts_an_upper_case_id(store: EventStore) -> None:
    agg = new_id()
    store.append([added(agg)])
    assert len(store.read_aggregate(agg.upper())) == 1


def test_a_bad_aggregate_id_is_a_clear_error(store: EventStore) -> None:
    with pytest.raises(InvalidEventError, match="aggregate_id must be a UUID"):
        store.read_aggregate("not-a-uuid")


def test_range_iteration_without_filter_stops_at_its_end(store: EventStore) -> None:
    _fill(store)
    assert [e.id for e in store.iter_range(2, 7, page_size=2)] == [3, 4, 5, 6, 7]


def test_range_iteration_with_filter_never_runs_past_its_end(store: EventStore) -> None:
    _fill(store)
    got = [e.id for e in store.iter_range(0, 7, types=["conf_item_removed"], page_size=1)]
    assert got == [3, 6]


def test_range_iteration_defaults_to_the_head(store: EventStore) -> None:
    _fill(store)
    assert len(list(store.iter_range())) == 10


def test_unknown_stored_types_read_back_as_plain_events(store: EventStore) -> None:
    store.append([Event(aggregate_id=new_id(), type="conf_never_registered", body={"a": 1})])
    event = store.read_after(0)[0]
    assert type(event) is Event
    assert event.type == "conf_never_registered"


def test_existing_uuids(store: EventStore) -> None:
    stored = store.append([added()])[0]
    other = new_id()
    assert store.existing_uuids([stored.uuid, other]) == {stored.uuid}


# -- transactions -----------------------------------------------------------------------


def test_a_failing_transaction_writes_nothing(store: EventStore) -> None:
    agg = new_id()
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.append([added(agg)])
        tx.set_tracker("conf_proc", 1)
        raise RuntimeError("boom")
    assert store.latest_position() == 0
    assert store.get_tracker("conf_proc") == 0


def test_a_transaction_commits_events_and_tracker_together(store: EventStore) -> None:
    with store.transaction() as tx:
        tx.append([added()])
        tx.set_tracker("conf_proc", 1)
    assert store.latest_position() == 1
    assert store.get_tracker("conf_proc") == 1


# -- trackers ---------------------------------------------------------------------------


def test_a_tracker_starts_at_zero(store: EventStore) -> None:
    assert store.get_tracker("conf_fresh") == 0


def test_a_tracker_advances(store: EventStore) -> None:
    _fill(store)
    store.set_tracker("conf_proc", 4)
    store.set_tracker("conf_proc", 7)
    assert store.get_tracker("conf_proc") == 7
    assert store.trackers()["conf_proc"] == 7


def test_a_tracker_refuses_to_move_back_by_accident(store: EventStore) -> None:
    _fill(store)
    store.set_tracker("conf_proc", 7)
    with pytest.raises(TrackerError):
        store.set_tracker("conf_proc", 4)
    assert store.get_tracker("conf_proc") == 7


def test_a_tracker_resets(store: EventStore) -> None:
    _fill(store)
    store.set_tracker("conf_proc", 7)
    store.reset_tracker("conf_proc")
    assert store.get_tracker("conf_proc") == 0
    store.reset_tracker("conf_proc", 5)
    assert store.get_tracker("conf_proc") == 5


def test_trackers_and_events_survive_reopening(store_spec: StoreSpec) -> None:
    first = store_spec.opened[0]
    first.append([added()])
    first.set_tracker("conf_proc", 1)
    first.close() if store_spec.backend != "memory" else None
    again = store_spec.open()
    assert again.get_tracker("conf_proc") == 1
    assert again.latest_position() == 1
    assert again.schema_version() >= 1


def test_setup_twice_is_harmless(store: EventStore) -> None:
    store.append([added()])
    store.setup()
    assert store.latest_position() == 1


# -- waiting and subscribing ------------------------------------------------------------


def test_wait_times_out_when_nothing_arrives(store: EventStore) -> None:
    assert store.wait(0, 0.05) is False


def test_wait_returns_when_an_event_exists(store: EventStore) -> None:
    store.append([added()])
    assert store.wait(0, 5.0) is True


def test_subscribe_yields_pages_and_stops(store: EventStore) -> None:
    import threading

    _fill(store)
    stop = threading.Event()
    seen: list[int] = []
    for page in store.subscribe(0, types=["conf_item_added"], batch_size=4, stop=stop,
                                idle_timeout=0.05):
        seen.extend(e.id for e in page.events if e.id is not None)
        if len(seen) >= 6:
            stop.set()
    assert seen == [1, 2, 4, 5, 7, 8]


def test_a_sqlite_path_that_cannot_be_created_is_a_clear_error() -> None:
    from esctl_lib import StoreUnavailableError, open_store

    store = open_store("sqlite:////proc/esctl-nope/x.db")
    with pytest.raises(StoreUnavailableError, match="cannot create the folder"):
        store.setup()


def test_reading_a_sqlite_store_that_does_not_exist_creates_no_file(tmp_path: Path) -> None:
    from esctl_lib import SchemaError, open_store

    store = open_store(f"sqlite:///{tmp_path / 'absent' / 'x.db'}")
    assert store.schema_version() == 0
    with pytest.raises(SchemaError, match="esctl setup"):
        store.latest_position()
    assert not (tmp_path / "absent").exists()


def test_a_sqlite_schema_newer_than_the_code_is_a_clear_error(tmp_path: Path) -> None:
    from esctl_lib import SchemaError, open_store

    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    store.setup()
    with store.transaction() as tx:
        tx.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (999, 'future', 0)")
    with pytest.raises(SchemaError, match="newer than this esctl knows"):
        store.setup()
