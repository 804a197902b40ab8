"""A partition's reads on PostgreSQL are filtered by the server: every read shape returns
exactly the events ``partition_of`` puts in that partition, in stream order, and paging
through them from each page's end never skips nor repeats one."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from esctl_lib import Event
from esctl_lib.processing.partitions import Partition, partition_of
from esctl_lib.stores.base import Page
from esctl_lib.stores.postgres import PostgresStore
from tests.postgres.conftest import PgSpec

pytestmark = pytest.mark.postgres

AGGREGATES = 60


@pytest.fixture
def filled(pg: PgSpec) -> tuple[PostgresStore, list[Event]]:
    """300 events of two types over 60 aggregates, interleaved."""
    store = pg.open()
    ids = [str(uuid.uuid4()) for _ in range(AGGREGATES)]
    stored: list[Event] = []
    for i in range(300):
        kind = "pg_part_a" if i % 3 else "pg_part_b"
        stored += store.append([Event(aggregate_id=ids[i % AGGREGATES], type=kind,
                                      body={"i": i})])
    return store, stored


def test_the_server_computes_the_same_partition_as_python(pg: PgSpec) -> None:
    store = pg.open()
    ids = [str(uuid.uuid4()) for _ in range(2000)] + [
        "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"]
    with store.transaction() as tx:
        rows = tx.fetchall(
            "SELECT a::text, ('x' || left(md5(a::text), 8))::bit(32)::bigint %% 2, "
            "('x' || left(md5(a::text), 8))::bit(32)::bigint %% 7 "
            "FROM unnest(%s::uuid[]) AS a", (ids,))
    assert len(rows) == len(ids)
    for agg, two, seven in rows:
        assert (partition_of(agg, 2), partition_of(agg, 7)) == (two, seven)


Reader = Callable[[int, int], Page]


def readers(store: PostgresStore, part: tuple[int, int], types: list[str] | None
            ) -> dict[str, Reader]:
    return {
        "read_page": lambda position, limit: store.read_page(
            position, types=types, limit=limit, partition=part),
        "read_page until": lambda position, limit: store.read_page(
            position, types=types, limit=limit, until=10_000, partition=part),
        "read_page_parked": lambda position, limit: store.read_page_parked(
            position, "pg_proc", types=types, limit=limit, partition=part)[0],
    }


@pytest.mark.parametrize("types", [None, ["pg_part_a"], ["pg_part_a", "pg_part_b"]])
@pytest.mark.parametrize("count", [1, 3])
def test_each_partition_reads_exactly_its_events(
    filled: tuple[PostgresStore, list[Event]], types: list[str] | None, count: int,
) -> None:
    store, stored = filled
    head = store.latest_position()
    wanted_all = [e for e in stored if types is None or e.type in types]
    for index in range(count):
        part = Partition("pg_proc", index, count)
        wanted = [e.id for e in wanted_all if part.accepts(e)]
        assert wanted, "every partition has events here"
        for name, read in readers(store, (index, count), types).items():
            for limit in (1, 7, 1000):
                seen, position = [], 0
                while True:
                    page = read(position, limit)
                    assert all(part.accepts(e) for e in page.events), name
                    seen += [e.id for e in page.events]
                    if len(page.events) < limit:
                        break
                    position = page.end
                assert seen == wanted, (name, limit)
                assert page.end == head, (name, limit)  # a page not full ends at the head


def test_a_partition_with_nothing_to_read_moves_to_the_head(
    filled: tuple[PostgresStore, list[Event]],
) -> None:
    store, _ = filled
    head = store.latest_position()
    for read in readers(store, (0, 2), ["pg_part_none"]).values():
        page = read(0, 100)
        assert (page.events, page.end) == ([], head)
