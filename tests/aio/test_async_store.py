"""The async store beyond the contract: async iterators, waiting, and a loop never blocked."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from esctl_lib import ConcurrencyError, SchemaError, StoreError, open_async_store
from esctl_lib.events import Event
from tests.aio.helpers import AioCounted, AioNoted, counted, new_id, opened
from tests.backends import StoreSpec, open_spec


def test_read_pages_through_the_stream_honouring_types_and_limit(store_spec: StoreSpec) -> None:
    async def main() -> None:
        async with await opened(store_spec) as store:
            for i in range(25):
                event: Event = counted(by=i) if i % 5 else AioNoted(aggregate_id=new_id())
                await store.append([event])
            every = [e.id async for e in store.read(page_size=4)]
            assert every == list(range(1, 26))
            noted = [e.id async for e in store.read(types=["aio_noted"], page_size=2)]
            assert noted == [1, 6, 11, 16, 21]
            assert [e.id async for e in store.read(10, limit=7, page_size=3)] == list(
                range(11, 18))
            assert await store.count(after=20) == 5
            assert await store.latest_position(types=["aio_noted"]) == 21

    asyncio.run(main())


def test_append_checks_the_expected_version_and_reads_the_aggregate_back(
    store_spec: StoreSpec,
) -> None:
    async def main() -> None:
        async with await opened(store_spec) as store:
            agg = new_id()
            first = await store.append([counted(agg), counted(agg, 2)], expected_version=0)
            assert [e.version for e in first] == [1, 2]
            with pytest.raises(ConcurrencyError, match="expected version 1, current version is 2"):
                await store.append([counted(agg)], expected_version=1)
            assert await store.aggregate_version(agg) == 2
            assert [e.body for e in await store.read_aggregate(agg)] == [{"by": 1}, {"by": 2}]
            assert [e.version for e in await store.read_aggregate(agg, from_version=2)] == [2]

    asyncio.run(main())


def test_a_subscriber_gets_every_event_of_concurrent_writers_once_in_order(
    store_spec: StoreSpec,
) -> None:
    writers, each = 8, 25

    async def main() -> None:
        async with await opened(store_spec) as store:
            seen: list[int] = []

            async def follow() -> None:
                async for page in store.subscribe(batch_size=10, idle_timeout=0.2):
                    seen.extend(e.id or 0 for e in page.events)
                    if len(seen) >= writers * each:
                        return

            async def write(n: int) -> None:
                agg = new_id()
                for version in range(each):
                    await store.append([counted(agg, n)], expected_version=version)

            follower = asyncio.create_task(follow())
            await asyncio.gather(*(write(n) for n in range(writers)))
            await asyncio.wait_for(follower, 30)
            assert len(seen) == writers * each
            assert len(set(seen)) == writers * each
            stream = [e.id async for e in store.read()]
            assert seen == stream

    asyncio.run(main())


def test_wait_wakes_on_an_append_and_times_out_without_one(store_spec: StoreSpec) -> None:
    async def main() -> None:
        async with await opened(store_spec) as store:
            assert await store.wait(0, 0.05) is False
            waiter = asyncio.create_task(store.wait(0, 30))
            await asyncio.sleep(0)
            await store.append([counted()])
            assert await asyncio.wait_for(waiter, 30) is True

    asyncio.run(main())


def test_wait_for_sees_the_own_write_and_the_processor_reaching_it(store_spec: StoreSpec) -> None:
    async def main() -> None:
        async with await opened(store_spec) as store:
            stored = await store.append([counted()])
            assert await store.wait_for(stored[0].id or 0, 10) is True
            assert await store.wait_for(99, 0.05) is False  # no such event
            assert await store.wait_for(stored[0].id or 0, 0.05, processor="p") is False
            waiting = asyncio.create_task(store.wait_for(stored[0].id or 0, 30, processor="p"))
            await asyncio.to_thread(store.sync.set_tracker, "p", stored[0].id or 0)
            assert await waiting is True

    asyncio.run(main())


def test_read_by_uuids_and_existing_uuids(store_spec: StoreSpec) -> None:
    async def main() -> None:
        async with await opened(store_spec) as store:
            stored = await store.append([counted()])
            found = await store.read_by_uuids([stored[0].uuid, new_id(), "nope"])
            assert [e.id for e in found] == [stored[0].id]
            assert await store.existing_uuids([stored[0].uuid, new_id()]) == {stored[0].uuid}

    asyncio.run(main())


def test_a_closed_store_refuses_calls(store_spec: StoreSpec) -> None:
    async def main() -> None:
        store = await opened(store_spec)
        await store.close()
        with pytest.raises(StoreError, match="closed"):
            await store.append([counted()])

    asyncio.run(main())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"],
                         ids=["sqlite", "postgres"])
def test_a_store_not_set_up_says_so(backend: str, tmp_path: object) -> None:
    from pathlib import Path

    from tests.backends import fresh_location

    async def main(url: str, schema: str | None) -> None:
        async with open_async_store(url, schema=schema) as store:
            with pytest.raises(SchemaError):
                await store.read_page(0)

    with fresh_location(backend, Path(str(tmp_path))) as location:
        asyncio.run(main(location.url, location.schema))


def _ticks_while(blocked: asyncio.Future[object], ticks: list[int]) -> asyncio.Task[None]:
    async def tick() -> None:
        while not blocked.done():
            ticks.append(1)
            await asyncio.sleep(0.005)

    return asyncio.create_task(tick())


def test_an_append_waiting_on_a_sqlite_write_lock_leaves_the_loop_running(tmp_path: object) -> None:
    from pathlib import Path

    with open_spec("sqlite", Path(str(tmp_path))) as spec:
        path = spec.url[len("sqlite:///"):]
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")

        async def main() -> None:
            async with open_async_store(spec.url, schema=spec.schema) as store:
                append = asyncio.ensure_future(store.append([counted()]))
                ticks: list[int] = []
                ticker = _ticks_while(append, ticks)
                while len(ticks) < 20:  # the loop runs while the append waits for the lock
                    assert not append.done()
                    await asyncio.sleep(0.005)
                holder.execute("ROLLBACK")
                assert [e.id for e in await append] == [1]
                await ticker

        try:
            asyncio.run(main())
        finally:
            holder.close()


@pytest.mark.postgres
def test_an_append_waiting_on_a_postgres_lock_leaves_the_loop_running(tmp_path: object) -> None:
    from pathlib import Path

    import psycopg
    from psycopg import sql

    from tests.backends import POSTGRES_DSN

    with open_spec("postgres", Path(str(tmp_path))) as spec:
        holder = psycopg.connect(POSTGRES_DSN)
        holder.execute(sql.SQL("LOCK TABLE {}.events IN EXCLUSIVE MODE").format(
            sql.Identifier(spec.schema or "")))
        released = threading.Event()

        async def main() -> None:
            async with open_async_store(spec.url, schema=spec.schema) as store:
                append = asyncio.ensure_future(store.append([counted()]))
                ticks: list[int] = []
                ticker = _ticks_while(append, ticks)
                while len(ticks) < 20:
                    assert not append.done()
                    await asyncio.sleep(0.005)
                holder.rollback()
                released.set()
                assert [e.type for e in await append] == [AioCounted.type_name]
                await ticker

        try:
            asyncio.run(main())
        finally:
            holder.close()
        assert released.is_set()


@pytest.mark.slow
@pytest.mark.postgres
def test_sixteen_coroutines_on_one_pool_lose_no_append(tmp_path: object) -> None:
    from pathlib import Path

    with open_spec("postgres", Path(str(tmp_path))) as spec:
        agg = new_id()

        async def main() -> None:
            async with await opened(spec) as store:
                wins = 0

                async def writer() -> None:
                    nonlocal wins
                    for _ in range(10):
                        while True:
                            version = await store.aggregate_version(agg)
                            try:
                                await store.append([counted(agg)], expected_version=version)
                                wins += 1
                                break
                            except ConcurrencyError:
                                continue

                await asyncio.gather(*(writer() for _ in range(16)))
                history = await store.read_aggregate(agg)
                assert wins == 160
                assert [e.version for e in history] == list(range(1, 161))

        asyncio.run(main())


@pytest.mark.postgres
def test_notifications_cross_between_the_async_and_the_sync_store(tmp_path: object) -> None:
    """With a 60 s fallback poll, only a NOTIFY can wake either waiter in time."""
    from pathlib import Path

    with open_spec("postgres", Path(str(tmp_path))) as spec:
        sync = spec.open(poll_interval=60.0)

        async def main() -> None:
            async with open_async_store(spec.url, schema=spec.schema,
                                        poll_interval=60.0) as store:
                assert await store.wait(0, 0.01) is False  # the listener is up now
                waiter = asyncio.create_task(store.wait(0, 30))
                await asyncio.to_thread(sync.append, [counted()])
                assert await asyncio.wait_for(waiter, 40) is True

                assert sync.wait(1, 0.01) is False
                woken = asyncio.ensure_future(asyncio.to_thread(sync.wait, 1, 30))
                await store.append([counted()])
                assert await asyncio.wait_for(woken, 40) is True

        asyncio.run(main())


def test_a_filtered_subscriber_gets_only_its_types(store_spec: StoreSpec) -> None:
    async def main() -> None:
        async with await opened(store_spec) as store:
            for i in range(12):
                await store.append([AioNoted(aggregate_id=new_id()) if i % 4 == 0 else counted()])
            got: list[int] = []
            async for page in store.subscribe(types=["aio_noted"], batch_size=2,
                                              idle_timeout=0.05):
                got.extend(e.id or 0 for e in page.events)
                if len(got) == 3:
                    break
            assert got == [1, 5, 9]

    asyncio.run(main())
