"""PostgreSQL-only store behaviour: refusals before anything is sent, own writes, capabilities."""

from __future__ import annotations

import uuid

import pytest

from esctl_lib import DuplicateEventError, Event, InvalidEventError
from esctl_lib.stores.postgres import PostgresAdvisoryLock
from tests.postgres.conftest import PgSpec


def ev(agg: str, n: int = 0) -> Event:
    return Event(aggregate_id=agg, type="pg_append", body={"n": n})


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


def test_a_stored_body_too_deep_for_python_is_a_store_error(pg: PgSpec) -> None:
    from esctl_lib import StoreError

    store = pg.open()
    stored = store.append([ev(str(uuid.uuid4()))])[0]
    deep = "[" * 3000 + "]" * 3000  # jsonb takes it; Python's parser does not
    with store.transaction() as tx:
        tx.execute("UPDATE events SET body = %s::jsonb WHERE id = %s",
                   ('{"d": ' + deep + "}", stored.id))
    with pytest.raises(StoreError, match="cannot decode the stored bodies"):
        store.read_page(0)


def test_racing_first_events_for_one_aggregate_store_exactly_one(pg: PgSpec) -> None:
    """Eight threads append a first event to the same aggregate at once: one is stored,
    each other one is a ConcurrencyError at 1."""
    import threading

    from esctl_lib import ConcurrencyError

    store, agg = pg.open(), str(uuid.uuid4())
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def write() -> None:
        start.wait()
        try:
            store.append([ev(agg)], expected_version=0)
            outcomes.append("stored")
        except ConcurrencyError as e:
            outcomes.append(f"conflict {e.expected}->{e.actual}")

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict 0->1"] * 7 + ["stored"]
    assert store.count() == 1 and store.aggregate_version(agg) == 1
