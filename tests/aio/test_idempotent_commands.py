"""Idempotent commands: ``save(..., command_id=...)`` appends a retried command once and
returns its first result, through the sync and the async repository, on every backend."""

from __future__ import annotations

import asyncio
import threading

import pytest

from esctl_lib import (
    AsyncRepository,
    ConcurrencyError,
    DuplicateEventError,
    EventStore,
    IdempotencyError,
    Repository,
    command_event_uuid,
    command_result,
)
from tests.aio.helpers import Counter, new_id, opened
from tests.backends import StoreSpec


def _bumped(repo: Repository, agg: str, *steps: int) -> Counter:
    counter = repo.load(Counter, agg)
    counter.bump(*steps)
    return counter


def test_a_command_s_events_get_uuids_derived_from_its_id(store: EventStore) -> None:
    repo, agg = Repository(store), new_id()
    stored = repo.save(_bumped(repo, agg, 1, 2), command_id="cmd-1")
    assert [e.uuid for e in stored] == [command_event_uuid("cmd-1", agg, i) for i in (0, 1)]
    assert command_event_uuid("cmd-1", agg, 0) == command_event_uuid("cmd-1", agg.upper(), 0)


def test_a_retry_built_before_the_first_attempt_landed_appends_nothing(store: EventStore) -> None:
    repo, agg = Repository(store), new_id()
    first, retry = _bumped(repo, agg, 1, 2), _bumped(repo, agg, 1, 2)  # both at version 0
    stored = repo.save(first, command_id="k")
    again = repo.save(retry, command_id="k")  # a ConcurrencyError, recognised as ours
    assert [(e.id, e.uuid) for e in again] == [(e.id, e.uuid) for e in stored]
    assert store.latest_position() == 2
    assert retry.changes == []


def test_a_retry_rebuilt_after_the_first_attempt_landed_gets_the_first_result(
    store: EventStore,
) -> None:
    repo, agg = Repository(store), new_id()
    stored = repo.save(_bumped(repo, agg, 1, 2), command_id="k")
    again = repo.save(_bumped(repo, agg, 1, 2), command_id="k")  # at version 2: duplicate uuids
    assert [e.id for e in again] == [e.id for e in stored]
    assert [e.version for e in again] == [1, 2]
    assert store.latest_position() == 2


def test_a_command_id_reused_for_other_events_is_refused(store: EventStore) -> None:
    repo, agg = Repository(store), new_id()
    repo.save(_bumped(repo, agg, 1), command_id="k")
    with pytest.raises(IdempotencyError, match="'k' was already used for different events"):
        repo.save(_bumped(repo, agg, 5), command_id="k")
    with pytest.raises(IdempotencyError, match="stored 1 event"):
        repo.save(_bumped(repo, agg, 1, 1), command_id="k")
    with pytest.raises(DuplicateEventError):  # an IdempotencyError is a duplicate uuid
        repo.save(_bumped(repo, agg, 7), command_id="k")
    assert store.latest_position() == 1


def test_a_real_conflict_still_raises_a_concurrency_error(store: EventStore) -> None:
    repo, agg = Repository(store), new_id()
    stale = _bumped(repo, agg, 1)
    repo.save(_bumped(repo, agg, 1), command_id="other")
    with pytest.raises(ConcurrencyError):
        repo.save(stale, command_id="mine")
    assert stale.changes != []


def test_one_command_id_on_two_aggregates_appends_to_both(store: EventStore) -> None:
    repo = Repository(store)
    repo.save(_bumped(repo, new_id(), 1), command_id="k")
    repo.save(_bumped(repo, new_id(), 1), command_id="k")
    assert store.latest_position() == 2


def test_command_result_finds_what_a_command_stored(store: EventStore) -> None:
    repo, agg = Repository(store), new_id()
    assert command_result(store, "k", agg) is None
    stored = repo.save(_bumped(repo, agg, 1, 2, 3), command_id="k")
    repo.save(_bumped(repo, agg, 9), command_id="later")
    found = command_result(store, "k", agg)
    assert found is not None
    assert [e.id for e in found] == [e.id for e in stored]


def test_concurrent_retries_of_one_command_append_it_once(store: EventStore) -> None:
    repo, agg, clients = Repository(store), new_id(), 8
    counters = [_bumped(repo, agg, 1, 2) for _ in range(clients)]  # all loaded at version 0
    start = threading.Barrier(clients)
    results: list[list[int | None]] = []
    errors: list[BaseException] = []

    def client(counter: Counter) -> None:
        start.wait()
        try:
            results.append([e.id for e in repo.save(counter, command_id="k")])
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=client, args=(c,)) for c in counters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stored = [e.id for e in store.read_aggregate(agg)]  # ids need not be 1 and 2 on PG:
    assert len(stored) == 2 and results == [stored] * clients  # losers may draw ids
    assert store.latest_position() == stored[-1]


def test_the_async_repository_is_idempotent_too(store_spec: StoreSpec) -> None:
    async def main() -> None:
        async with await opened(store_spec) as store:
            repo, agg = AsyncRepository(store), new_id()
            assert await repo.command_result("k", agg) is None
            counters = []
            for _ in range(6):
                counter = await repo.load(Counter, agg)
                counter.bump(1, 2)
                counters.append(counter)
            results = await asyncio.gather(*(repo.save(c, command_id="k") for c in counters))
            # Every retry gets the first result: the stored events (on PostgreSQL a losing
            # attempt may have drawn ids from the sequence, so they need not be 1 and 2).
            stored = tuple(e.id for e in await store.read_aggregate(agg))
            assert len(stored) == 2
            assert {tuple(e.id for e in r) for r in results} == {stored}
            rebuilt = await repo.load(Counter, agg)
            assert rebuilt.total == 3 and rebuilt.version == 2
            rebuilt.bump(1, 2)
            assert tuple(e.id for e in await repo.save(rebuilt, command_id="k")) == stored
            found = await repo.command_result("k", agg)
            assert found is not None and [e.version for e in found] == [1, 2]
            other = await repo.load(Counter, agg)
            other.bump(4)
            with pytest.raises(IdempotencyError):
                await repo.save(other, command_id="k")
            assert await store.latest_position() == stored[-1]

    asyncio.run(main())


def test_the_async_repository_saves_and_loads_without_a_command_id(store_spec: StoreSpec) -> None:
    async def main() -> None:
        async with await opened(store_spec) as store:
            repo, agg = AsyncRepository(store), new_id()
            counter = await repo.load(Counter, agg)
            counter.bump(2, 3)
            stale = await repo.load(Counter, agg)
            stale.bump(1)
            assert [e.version for e in await repo.save(counter, correlation_id=agg)] == [1, 2]
            with pytest.raises(ConcurrencyError):
                await repo.save(stale)
            loaded = await repo.load(Counter, agg)
            assert (loaded.total, loaded.version) == (5, 2)
            assert {e.correlation_id for e in await store.read_aggregate(agg)} == {agg}

    asyncio.run(main())


def test_an_idempotency_error_pickles_with_its_command_id() -> None:
    import pickle

    error = IdempotencyError("k", "event x is stored as nothing")
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), str(again), again.command_id) == (IdempotencyError, str(error), "k")
