"""Following the stream: wait, subscribe, and concurrent writers with a following reader."""

from __future__ import annotations

import multiprocessing as mp
import queue
import random
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from esctl_lib.errors import ConcurrencyError
from esctl_lib.events import Event
from esctl_lib.stores.base import EventStore
from esctl_lib.testing.contract.base import ContractBase, added, fill
from esctl_lib.testing.contract.events import ConfItemAdded
from esctl_lib.testing.polling import eventually

WRITERS = 4
APPENDS_PER_WRITER = 150
SHARED_AGGREGATES = [str(uuid.UUID(int=i + 1)) for i in range(5)]


class SubscribeContract(ContractBase):
    """``wait`` and ``subscribe``."""

    def test_wait_times_out_when_nothing_arrives(self, store: EventStore) -> None:
        assert store.wait(0, 0.05) is False

    def test_wait_returns_when_an_event_exists(self, store: EventStore) -> None:
        store.append([added()])
        assert store.wait(0, 5.0) is True

    def test_subscribe_yields_pages_and_stops(self, store: EventStore) -> None:
        fill(store)
        stop = threading.Event()
        seen: list[int] = []
        for page in store.subscribe(0, types=["conf_item_added"], batch_size=4, stop=stop,
                                    idle_timeout=0.05):
            seen.extend(e.id for e in page.events if e.id is not None)
            if len(seen) >= 6:
                stop.set()
        assert seen == [1, 2, 4, 5, 7, 8]

    def test_a_subscriber_sees_an_event_appended_while_it_waits(self, store: EventStore) -> None:
        stop = threading.Event()
        seen: list[Event] = []

        def follow() -> None:
            for page in store.subscribe(0, stop=stop, idle_timeout=0.05):
                seen.extend(page.events)

        follower = threading.Thread(target=follow)
        follower.start()
        try:
            stored = self.second_store(store).append([added()])[0]
            eventually(lambda: seen, timeout=30, what="the subscriber to see the new event")
        finally:
            stop.set()
            follower.join(timeout=10)
        assert [e.uuid for e in seen] == [stored.uuid]


def _write(store: EventStore, seed: int) -> tuple[int, int]:
    """One writer's share: appends to shared aggregates (retrying conflicts) and new ones."""
    rng = random.Random(seed)
    conflicts = written = 0
    for i in range(APPENDS_PER_WRITER):
        if rng.random() < 0.5:
            agg = rng.choice(SHARED_AGGREGATES)
            while True:
                version = store.aggregate_version(agg)
                try:
                    store.append([ConfItemAdded(aggregate_id=agg, body={"w": seed, "i": i})],
                                 expected_version=version)
                    break
                except ConcurrencyError:
                    conflicts += 1
            written += 1
        else:
            agg = str(uuid.uuid4())
            n = rng.randint(1, 3)
            store.append([ConfItemAdded(aggregate_id=agg, body={"w": seed, "i": i})
                          for _ in range(n)])
            written += n
    return written, conflicts


def _writer_process(opener: Callable[[], EventStore], seed: int, out: Any) -> None:
    store = opener()
    try:
        out.put(_write(store, seed))
    finally:
        store.close()


class ConcurrentWritersContract(ContractBase):
    """Writers racing on shared aggregates lose nothing; a following reader skips nothing."""

    def _run_writers(self, store: EventStore) -> int:
        opener = self.store_opener()
        results: list[tuple[int, int]] = []
        if opener is None:
            threads = [threading.Thread(target=lambda s=s: results.append(_write(store, s)))
                       for s in range(WRITERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
                assert not t.is_alive(), "a writer thread did not finish in 120 s"
        else:
            ctx = mp.get_context("spawn")
            out: Any = ctx.Queue()
            procs = [ctx.Process(target=_writer_process, args=(opener, s, out))
                     for s in range(WRITERS)]
            for p in procs:
                p.start()
            try:
                results = [out.get(timeout=120) for _ in procs]
            except queue.Empty:
                raise AssertionError("a writer process did not report in 120 s") from None
            for p in procs:
                p.join(timeout=60)
                assert p.exitcode == 0
        assert len(results) == WRITERS
        return sum(written for written, _ in results)

    def test_concurrent_writers_lose_nothing_and_never_duplicate_a_version(
        self, store: EventStore
    ) -> None:
        reader = self.second_store(store)
        seen: list[Event] = []
        stop = threading.Event()

        def follow() -> None:
            for page in reader.subscribe(0, batch_size=100, stop=stop, idle_timeout=0.05):
                seen.extend(page.events)

        follower = threading.Thread(target=follow)
        follower.start()
        try:
            total = self._run_writers(store)
            check = self.second_store(store)
            # Committed is not always readable at once: on PostgreSQL a transaction still
            # open elsewhere on the server holds readers back until it ends.
            eventually(lambda: check.count() >= total, timeout=60,
                       what=f"{total} events to be readable")
            events = list(check.iter_range())
            assert len(events) == total
            assert len({e.uuid for e in events}) == total
            by_agg: dict[str, list[int]] = defaultdict(list)
            for e in events:
                assert e.version is not None
                by_agg[e.aggregate_id].append(e.version)
            for versions in by_agg.values():
                assert sorted(versions) == list(range(1, len(versions) + 1))
            eventually(lambda: len(seen) >= total, timeout=30,
                       what=f"the following reader to see {total} events")
        finally:
            stop.set()
            follower.join(timeout=10)
        assert sorted(e.uuid for e in seen) == sorted(e.uuid for e in events)
