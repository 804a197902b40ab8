"""PostgreSQL appends: conflicts inside transactions, duplicate uuids, batches."""

from __future__ import annotations

import uuid

import pytest

from esctl_lib import ConcurrencyError, DuplicateEventError, Event, InvalidEventError
from esctl_lib.stores.postgres import PostgresAdvisoryLock
from tests.postgres.conftest import PgSpec


def ev(agg: str, n: int = 0) -> Event:
    return Event(aggregate_id=agg, type="pg_append", body={"n": n})


def test_a_version_mismatch_inside_a_transaction_leaves_it_usable(pg: PgSpec) -> None:
    store, agg = pg.open(), str(uuid.uuid4())
    store.append([ev(agg)])
    with store.transaction() as tx:
        with pytest.raises(ConcurrencyError) as caught:
            tx.append([ev(agg)], expected_version=0)
        tx.append([ev(agg, 2)], expected_version=1)
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    assert [e.version for e in store.read_aggregate(agg)] == [1, 2]


def test_a_duplicate_uuid_error_names_the_uuid(pg: PgSpec) -> None:
    store = pg.open()
    first = store.append([ev(str(uuid.uuid4()))])[0]
    again = Event(aggregate_id=str(uuid.uuid4()), type="pg_append", uuid=first.uuid)
    with pytest.raises(DuplicateEventError, match=first.uuid):
        store.append([again])


def test_a_batch_gets_consecutive_ids_in_version_order(pg: PgSpec) -> None:
    store, agg = pg.open(), str(uuid.uuid4())
    stored = store.append([ev(agg, n) for n in range(5)], expected_version=0)
    read = store.read_aggregate(agg)
    assert [e.id for e in stored] == [e.id for e in read] == [1, 2, 3, 4, 5]
    assert [e.body["n"] for e in read] == [0, 1, 2, 3, 4]


def test_metadata_and_causation_round_trip_in_a_batch(pg: PgSpec) -> None:
    store, agg, cause = pg.open(), str(uuid.uuid4()), str(uuid.uuid4())
    events = [Event(aggregate_id=agg, type="pg_append", causation_id=cause,
                    metadata={"tenant": "t1", "n": n}) for n in range(2)]
    store.append(events)
    read = store.read_after(0)
    assert [e.metadata for e in read] == [{"tenant": "t1", "n": 0}, {"tenant": "t1", "n": 1}]
    assert {e.causation_id for e in read} == {cause}


def test_an_append_without_expected_version_follows_a_concurrent_one(pg: PgSpec) -> None:
    first, second, agg = pg.open(), pg.open(), str(uuid.uuid4())
    first.append([ev(agg)])
    assert second.append([ev(agg)])[0].version == 2


def test_a_nul_character_is_refused_naming_the_field_before_anything_is_sent(pg: PgSpec) -> None:
    store, agg = pg.open(), str(uuid.uuid4())
    bad = Event(aggregate_id=agg, type="pg_append", body={"title": "a\x00b"})
    with pytest.raises(InvalidEventError, match=r"body\.title"):
        store.append([ev(agg), bad])
    with store.transaction() as tx, pytest.raises(InvalidEventError, match=r"metadata\.m"):
        tx.append([Event(aggregate_id=agg, type="pg_append", metadata={"m": ["\x00"]})])
    assert store.count() == 0
    assert store.aggregate_version(agg) == 0


def test_one_uuid_twice_in_one_append_is_named(pg: PgSpec) -> None:
    store, agg, twice = pg.open(), str(uuid.uuid4()), str(uuid.uuid4())
    with pytest.raises(DuplicateEventError, match=twice):
        store.append([Event(aggregate_id=agg, type="pg_append", uuid=twice),
                      Event(aggregate_id=agg, type="pg_append", uuid=twice)])
    assert store.count() == 0


def test_the_stores_of_one_process_share_their_own_writes_per_schema(pg: PgSpec) -> None:
    first, second = pg.open(), pg.open()
    assert first.own_writes is second.own_writes
    stored = first.append([ev(str(uuid.uuid4()))])[0]
    assert second.own_writes.newest == stored.id
    assert second.read_after(0)[0].id == stored.id  # waits for it, then stops waiting
    assert first.own_writes.newest == 0


def test_the_store_reports_remote_reads_a_horizon_and_an_advisory_lock(pg: PgSpec) -> None:
    store = pg.open()
    assert store.backend == "postgresql"
    assert store.remote_reads is True
    assert store.reader_horizon() is not None
    lock = store.processor_lock("pg_proc")
    try:
        assert isinstance(lock, PostgresAdvisoryLock)
        assert lock.try_acquire()
        with store.processor_lock("pg_proc") as other:
            assert not other.try_acquire()
    finally:
        lock.close()


def test_an_untyped_event_with_an_escape_in_its_type_is_refused(pg: PgSpec) -> None:
    store = pg.open()
    with pytest.raises(InvalidEventError, match="invalid event type name"):
        store.append([Event(aggregate_id=str(uuid.uuid4()), type="pg\x1b]0;title\x07")])
    assert store.count() == 0
