"""One read for many processors: the shared feed (esctl_lib.processing.fanout)."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from esctl_lib import EventStore
from esctl_lib.processing.fanout import SharedFeed
from esctl_lib.processing.processor import Processor
from esctl_lib.processing.retry import retry_policy
from esctl_lib.processing.state import read_state
from esctl_lib.processing.worker import run_processor
from esctl_lib.testing import eventually
from tests.backends import StoreSpec
from tests.processing.runner_apps.apps import RunnerTick
from tests.processing.runner_apps.support import shared_backends, start_runner, stop
from tests.processing.scale_apps import SeenA, SeenB, SeenC

APP = "tests.processing.scale_apps"

pytestmark = shared_backends


def append_ticks(store: EventStore, count: int, aggregates: int = 10,
                 body: dict[str, str] | None = None) -> int:
    ids = [str(uuid.uuid4()) for _ in range(aggregates)]
    last = 0
    for i in range(0, count, 100):
        events = [RunnerTick(aggregate_id=ids[j % aggregates], body=body or {})
                  for j in range(i, min(count, i + 100))]
        for agg in ids:
            mine = [e for e in events if e.aggregate_id == agg]
            if mine:
                last = max(last, *(e.id or 0 for e in store.append(mine)))
    eventually(lambda: store.latest_position() >= last, what="the ticks to be readable")
    return last


@contextmanager
def running(spec: StoreSpec, feed: SharedFeed, *processors: Processor
            ) -> Iterator[dict[str, BaseException]]:
    """Each processor in a thread of its own on ``feed``; stopped on leaving."""
    stop, errors = threading.Event(), {}

    def work(p: Processor) -> None:
        reader = feed.reader(handled=p.handled_types())
        try:
            run_processor(p, spec.open(), stop=stop, retry=retry_policy("none"),
                          idle_timeout=0.05, feed=reader)
        except BaseException as e:
            errors[p.name] = e

    threads = [threading.Thread(target=work, args=(p,)) for p in processors]
    for t in threads:
        t.start()
    try:
        yield errors
    finally:
        stop.set()
        for t in threads:
            t.join()


def seen(store: EventStore, table: str) -> tuple[int, int, int]:
    """(rows, distinct events, events seen out of per-aggregate order)."""
    with store.transaction() as tx:
        rows = tx.fetchone(f"SELECT count(*), count(DISTINCT event_id) FROM {table}")
        order = tx.fetchone(f"SELECT COALESCE(sum(out_of_order), 0) FROM {table}_order")
    assert rows is not None and order is not None
    return int(rows[0]), int(rows[1]), int(order[0])


def feed_for(store: EventStore, *processors: Processor, **kwargs: float) -> SharedFeed:
    return SharedFeed.for_readers([p.types(store.registry) for p in processors],
                                  [p.batch_size for p in processors], **kwargs)


def test_every_reader_gets_every_event_exactly_once(store_spec: StoreSpec) -> None:
    store = store_spec.opened[0]
    head = append_ticks(store, 1000)
    processors = [SeenA(), SeenB(), SeenC()]
    feed = feed_for(store, *processors)
    with running(store_spec, feed, *processors) as errors:
        eventually(lambda: all(store.get_tracker(p.name) == head for p in processors),
                   timeout=60, what="every reader at the head")
        more = append_ticks(store, 300)
        eventually(lambda: all(store.get_tracker(p.name) == more for p in processors),
                   timeout=60, what="every reader at the new head")
    assert errors == {}
    for p in processors:
        assert seen(store, p.table) == (1300, 1300, 0)
    # shared: far fewer pages were read than three readers reading alone would
    assert feed.pages_read < 2 * (1300 // feed.limit + 10)


def test_a_failing_reader_does_not_stop_the_others(store_spec: StoreSpec) -> None:
    store = store_spec.opened[0]
    append_ticks(store, 200)
    append_ticks(store, 1, aggregates=1, body={"fail_in": "seen_a"})
    head = append_ticks(store, 300)
    processors = [SeenA(), SeenB(), SeenC()]
    feed = feed_for(store, *processors, hold=0.2)
    with running(store_spec, feed, *processors) as errors:
        eventually(lambda: all(store.get_tracker(p.name) == head for p in processors[1:]),
                   timeout=60, what="the others at the head")
        eventually(lambda: "seen_a" in errors, what="seen_a to give up")
    assert seen(store, "seen_b") == (501, 501, 0) and seen(store, "seen_c") == (501, 501, 0)
    assert seen(store, "seen_a")[0] == 200  # stopped on the poison event, before it


def test_a_stuck_reader_holds_the_others_back_by_the_buffer_only(store_spec: StoreSpec
                                                                  ) -> None:
    store = store_spec.opened[0]
    head = append_ticks(store, 1000)
    fast = SeenA()  # batch 50: every page 50 events
    feed = feed_for(store, fast, buffer_pages=4, hold=120)
    stuck = feed.reader(handled=None)
    page, _ = stuck.read(store, 0, types=fast.types(store.registry), limit=50)
    assert len(page.events) == 50  # then it reads no more: it wants the page after
    with running(store_spec, feed, fast) as errors:
        # the buffer: 4 pages past the stuck reader's, and no further while it is stuck
        eventually(lambda: store.get_tracker(fast.name) == page.end + 4 * 50 or None,
                   timeout=60, what="the fast reader a buffer ahead")
        assert store.get_tracker(fast.name) == page.end + 4 * 50
        stuck.close()  # it leaves: nothing holds the feed any more
        eventually(lambda: store.get_tracker(fast.name) == head, timeout=60,
                   what="the fast reader at the head")
    assert errors == {} and seen(store, "seen_a") == (1000, 1000, 0)


def test_a_reader_off_the_feed_reads_alone_and_joins_again(store_spec: StoreSpec) -> None:
    store = store_spec.opened[0]
    head = append_ticks(store, 1000)
    first, late = SeenA(), SeenC()
    feed = feed_for(store, first, late, buffer_pages=2, hold=0)
    with running(store_spec, feed, first):
        eventually(lambda: store.get_tracker(first.name) == head, timeout=60,
                   what="the first reader at the head")
    tail = append_ticks(store, 200)
    with running(store_spec, feed, first, late) as errors:
        eventually(lambda: store.get_tracker(late.name) == tail
                   and store.get_tracker(first.name) == tail, timeout=60,
                   what="both at the head")
    assert errors == {}
    assert seen(store, "seen_a") == (1200, 1200, 0) and seen(store, "seen_c") == (1200, 1200, 0)


def test_pages_chain_by_position(store_spec: StoreSpec) -> None:
    store = store_spec.opened[0]
    append_ticks(store, 120)
    feed = SharedFeed(types=None, limit=50)
    a, b = feed.reader(handled=None), feed.reader(handled=None)
    first, full = a.read(store, 0, types=None, limit=50)
    again, _ = b.read(store, 0, types=None, limit=50)
    assert full and again is first and feed.pages_read == 1


@pytest.mark.slow
def test_a_shared_read_child_killed_mid_catch_up_loses_and_doubles_nothing(
    store_spec: StoreSpec, tmp_path: Path
) -> None:
    """Two runners of the same two processors (one shared-read child each): kill the
    active child; the standby (or the restarted child) carries on, nothing lost or doubled."""
    store = store_spec.opened[0]
    SeenA().setup(store)
    SeenB().setup(store)
    head = append_ticks(store, 3000)
    apps = (f"{APP}:SeenA", f"{APP}:SeenB")
    first = start_runner(store_spec, tmp_path, *apps, log_name="a")
    second = start_runner(store_spec, tmp_path, *apps, log_name="b")
    try:
        eventually(lambda: store.get_tracker("seen_a") > 0 or None, timeout=60,
                   what="processing to start")
        state = read_state(store, "seen_a")
        assert state is not None and state.pid is not None
        os.kill(state.pid, signal.SIGKILL)
        eventually(lambda: store.get_tracker("seen_a") == head
                   and store.get_tracker("seen_b") == head, timeout=120,
                   what="both processors at the head after the kill")
    finally:
        for runner in (first, second):
            stop(runner)
    assert seen(store, "seen_a") == (3000, 3000, 0)
    assert seen(store, "seen_b") == (3000, 3000, 0)
