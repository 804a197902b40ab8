"""Appends at a version the store object saw as the newest skip the version read
(``stores/postgres/known_heads.py``); every guarantee of the read holds without it."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import psycopg
import pytest

from esctl_lib import (
    Aggregate,
    ConcurrencyError,
    DuplicateEventError,
    Event,
    Repository,
    handles,
    open_async_store,
)
from esctl_lib.stores.postgres import PostgresStore
from tests.postgres.conftest import PgSpec


class Counted(Event, type_name="kh_counted"):
    pass


class Counter(Aggregate):
    total = 0

    @handles(Counted)
    def _counted(self, event: Event) -> None:
        self.total += 1

    def count(self, n: int = 1) -> None:
        for _ in range(n):
            self.apply(Counted(aggregate_id=self.id, body={"n": self.total}))


def _versions(admin: psycopg.Connection[Any], schema: str, agg: str) -> list[int]:
    rows = admin.execute(
        psycopg.sql.SQL("SELECT version FROM {}.events WHERE aggregate_id = %s ORDER BY id")
        .format(psycopg.sql.Identifier(schema)), (agg,)).fetchall()
    return [r[0] for r in rows]


def _event(agg: str, **fields: Any) -> Counted:
    return Counted(aggregate_id=agg, body={"n": 0}, **fields)


def test_a_store_knows_the_head_it_appended_and_the_head_it_read(pg: PgSpec) -> None:
    writer, reader = pg.open(), pg.open()
    agg = str(uuid.uuid4())
    writer.append([_event(agg)], expected_version=0)
    writer.append([_event(agg), _event(agg)], expected_version=1)
    assert writer.heads.at(agg, 3)
    assert not reader.heads.at(agg, 3)
    assert [e.version for e in reader.read_aggregate(agg)] == [1, 2, 3]
    assert reader.heads.at(agg, 3)


def test_one_and_many_events_at_a_known_head_are_stored_contiguously(
    pg: PgSpec, admin: psycopg.Connection[Any]
) -> None:
    store = pg.open()
    repo = Repository(store)
    counter = Counter(uuid.uuid4())
    for n in (1, 1, 3, 1, 5):  # one event, then batches, each at the head just saved
        counter.count(n)
        repo.save(counter)
    agg = str(counter.id)
    assert _versions(admin, pg.schema, agg) == list(range(1, 12))
    with pytest.raises(ConcurrencyError):  # one too high: the noted head is exactly 11
        store.append([_event(agg)], expected_version=12)
    assert _versions(admin, pg.schema, agg) == list(range(1, 12))
    loaded = Repository(pg.open()).load(Counter, counter.id)
    assert loaded.version == 11 and loaded.total == 11
    assert [e.body["n"] for e in store.read_aggregate(agg)] == list(range(11))


def test_a_stale_known_head_is_refused_and_writes_nothing(
    pg: PgSpec, admin: psycopg.Connection[Any]
) -> None:
    """Another store object appended since: the key refuses the known-head append with the
    actual version, and the next append at that version is stored."""
    mine, other = pg.open(), pg.open()
    agg = str(uuid.uuid4())
    mine.append([_event(agg)], expected_version=0)
    other.append([_event(agg)], expected_version=1)
    assert mine.heads.at(agg, 1)
    with pytest.raises(ConcurrencyError) as refused:
        mine.append([_event(agg), _event(agg)], expected_version=1)
    assert (refused.value.expected, refused.value.actual) == (1, 2)
    assert not mine.heads.at(agg, 1)
    assert _versions(admin, pg.schema, agg) == [1, 2]
    assert [e.version for e in mine.append([_event(agg)], expected_version=2)] == [3]
    assert _versions(admin, pg.schema, agg) == [1, 2, 3]


def test_a_wrong_version_this_store_could_know_takes_no_event_id(pg: PgSpec) -> None:
    """Only the exact known head skips the read: one behind, the read refuses before any
    row takes an id."""
    store = pg.open()
    agg = str(uuid.uuid4())
    store.append([_event(agg)], expected_version=0)
    second = store.append([_event(agg)], expected_version=1)[0]
    with pytest.raises(ConcurrencyError):
        store.append([_event(agg)], expected_version=1)
    assert second.id is not None
    assert store.append([_event(agg)], expected_version=2)[0].id == second.id + 1


def test_a_taken_uuid_at_a_known_head_is_a_duplicate(pg: PgSpec) -> None:
    store = pg.open()
    agg = str(uuid.uuid4())
    first = store.append([_event(agg)], expected_version=0)[0]
    with pytest.raises(DuplicateEventError, match=first.uuid):
        store.append([_event(agg, uuid=first.uuid)], expected_version=1)
    assert store.aggregate_version(agg) == 1


def test_a_taken_uuid_at_a_stale_known_head_is_a_concurrency_error(pg: PgSpec) -> None:
    """Both wrong: named as when the version is read first (the version wins)."""
    mine, other = pg.open(), pg.open()
    agg = str(uuid.uuid4())
    first = mine.append([_event(agg)], expected_version=0)[0]
    other.append([_event(agg)], expected_version=1)
    with pytest.raises(ConcurrencyError) as refused:
        mine.append([_event(agg, uuid=first.uuid)], expected_version=1)
    assert refused.value.actual == 2


def test_an_append_in_a_transaction_forgets_the_head(pg: PgSpec) -> None:
    """A transaction's append is not noted (it may roll back), and the head noted before it
    is forgotten: the next autocommit append reads the version again."""
    store = pg.open()
    agg = str(uuid.uuid4())
    store.append([_event(agg)], expected_version=0)
    with store.transaction() as tx:
        tx.append([_event(agg)], expected_version=1)
    assert not store.heads.at(agg, 1) and not store.heads.at(agg, 2)
    last_id = store.read_aggregate(agg)[-1].id
    with pytest.raises(ConcurrencyError):
        store.append([_event(agg)], expected_version=1)
    assert last_id is not None
    assert store.append([_event(agg)], expected_version=2)[0].id == last_id + 1


def test_a_rolled_back_transaction_leaves_no_head_behind(
    pg: PgSpec, admin: psycopg.Connection[Any]
) -> None:
    store = pg.open()
    agg = str(uuid.uuid4())
    store.append([_event(agg)], expected_version=0)

    class Stop(Exception):
        pass

    with pytest.raises(Stop), store.transaction() as tx:
        tx.append([_event(agg)], expected_version=1)
        raise Stop
    with pytest.raises(ConcurrencyError):
        store.append([_event(agg)], expected_version=2)  # version 2 was rolled back
    assert _versions(admin, pg.schema, agg) == [1]


@pytest.mark.slow
def test_writers_with_their_own_stores_keep_versions_contiguous(
    pg: PgSpec, admin: psycopg.Connection[Any]
) -> None:
    """Six threads, each with its own store object (so each knows a head the others move
    on), load, count and save one aggregate, retrying on conflicts: every save lands once,
    at the next version."""
    agg = uuid.uuid4()
    stores: list[PostgresStore] = [pg.open() for _ in range(6)]
    Repository(stores[0]).save(_started(agg))
    saves_each = 40
    errors: list[BaseException] = []

    def work(store: PostgresStore) -> None:
        repo = Repository(store)
        try:
            counter = repo.load(Counter, agg)
            saved = 0
            while saved < saves_each:
                counter.count(1 + saved % 3)
                try:
                    repo.save(counter)
                    saved += 1
                except ConcurrencyError:
                    counter = repo.load(Counter, agg)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    versions = _versions(admin, pg.schema, str(agg))
    assert versions == list(range(1, len(versions) + 1))
    expected = 1 + sum(1 + i % 3 for i in range(saves_each)) * len(stores)
    assert len(versions) == expected


def _started(agg: uuid.UUID) -> Counter:
    counter = Counter(agg)
    counter.count(1)
    return counter


def test_the_async_store_knows_heads_as_the_sync_store_does(
    pg: PgSpec, admin: psycopg.Connection[Any]
) -> None:
    agg = str(uuid.uuid4())
    other = pg.open()

    async def run() -> None:
        async with open_async_store(pg.url, schema=pg.schema) as store:
            await store.append([_event(agg)], expected_version=0)
            await store.append([_event(agg), _event(agg)], expected_version=1)
            assert store.heads.at(agg, 3)  # type: ignore[attr-defined]
            other.append([_event(agg)], expected_version=3)
            with pytest.raises(ConcurrencyError) as refused:
                await store.append([_event(agg)], expected_version=3)
            assert refused.value.actual == 4
            taken = (await store.read_aggregate(agg))[0].uuid
            assert store.heads.at(agg, 4)  # type: ignore[attr-defined]
            with pytest.raises(DuplicateEventError):
                await store.append([_event(agg, uuid=taken)], expected_version=4)
            assert [e.version for e in await store.append(
                [_event(agg)], expected_version=4)] == [5]

    asyncio.run(run())
    assert _versions(admin, pg.schema, agg) == [1, 2, 3, 4, 5]
