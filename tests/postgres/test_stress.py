"""Concurrent writer processes against one PostgreSQL store: nothing skipped, nothing doubled."""

from __future__ import annotations

import multiprocessing as mp
import random
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

import pytest

from esctl_lib import ConcurrencyError, Event
from esctl_lib.stores.postgres import PostgresStore
from tests.postgres.conftest import PgSpec

pytestmark = pytest.mark.slow

WRITERS = 8
EVENTS_PER_WRITER = 2000
SHARED = [str(uuid.UUID(int=i + 1)) for i in range(40)]
RACERS = 8
RACE_ROUNDS = 40


def _stress_writer(url: str, schema: str, seed: int, out: Any) -> None:
    """Append EVENTS_PER_WRITER events: new aggregates, shared ones with expected versions,
    batches of 1-5, some without a version check."""
    rng = random.Random(seed)
    store = PostgresStore(url, schema=schema, own_writes_wait=0.0)
    written = conflicts = 0
    while written < EVENTS_PER_WRITER:
        n = min(rng.randint(1, 5), EVENTS_PER_WRITER - written)
        roll = rng.random()
        agg = rng.choice(SHARED) if roll < 0.6 else str(uuid.uuid4())
        events = [Event(aggregate_id=agg, type="stress", body={"w": seed, "k": written + i})
                  for i in range(n)]
        if roll < 0.45:
            try:
                store.append(events, expected_version=store.aggregate_version(agg))
            except ConcurrencyError:
                conflicts += 1
                continue
        else:
            store.append(events, expected_version=0 if roll >= 0.6 else None)
        written += n
    store.close()
    out.put((written, conflicts))


def test_eight_writers_and_a_following_reader_see_every_event_exactly_once(pg: PgSpec) -> None:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    reader = pg.open()
    seen: list[Event] = []
    stop = threading.Event()

    def follow() -> None:
        for page in reader.subscribe(0, batch_size=500, stop=stop, idle_timeout=0.2):
            seen.extend(page.events)

    follower = threading.Thread(target=follow)
    follower.start()
    procs = [ctx.Process(target=_stress_writer, args=(pg.url, pg.schema, s, out))
             for s in range(WRITERS)]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=120) for _ in procs]
        total = sum(w for w, _ in results)
        deadline = time.monotonic() + 60
        while len(seen) < total and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # anything extra would show up now
    finally:
        stop.set()
        follower.join(timeout=30)
        for p in procs:
            p.join(timeout=30)
    assert total == WRITERS * EVENTS_PER_WRITER
    assert len(seen) == total
    assert len({e.uuid for e in seen}) == total
    assert pg.open().count() == total
    versions: dict[str, list[int]] = defaultdict(list)
    for e in seen:
        assert e.version is not None
        versions[e.aggregate_id].append(e.version)
    for agg, got in versions.items():
        assert got == list(range(1, len(got) + 1)), agg


def _racer(url: str, schema: str, agg: str, seed: int, start: Any, out: Any) -> None:
    """Round 1: everyone appends the aggregate's first event at once. Then keep racing."""
    rng = random.Random(seed)
    store = PostgresStore(url, schema=schema, own_writes_wait=0.0)
    won: list[str] = []
    lost = other = 0
    start.wait()
    for round_ in range(RACE_ROUNDS):
        expected = 0 if round_ == 0 else store.aggregate_version(agg)
        events = [Event(aggregate_id=agg, type="race", body={"r": seed})
                  for _ in range(rng.choice((1, 1, 2)))]
        try:
            store.append(events, expected_version=expected)
            won.extend(e.uuid for e in events)
        except ConcurrencyError:
            lost += 1
        except Exception:
            other += 1
        if round_ == 0:
            out.put(("first", len(won) > 0))
    store.close()
    out.put(("done", won, lost, other))


def test_eight_processes_racing_on_one_aggregate_leave_contiguous_versions(pg: PgSpec) -> None:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = ctx.Barrier(RACERS)
    agg = str(uuid.uuid4())
    procs = [ctx.Process(target=_racer, args=(pg.url, pg.schema, agg, s, start, out))
             for s in range(RACERS)]
    for p in procs:
        p.start()
    try:
        messages = [out.get(timeout=120) for _ in range(2 * RACERS)]
    finally:
        for p in procs:
            p.join(timeout=30)
    firsts = [m[1] for m in messages if m[0] == "first"]
    done = [m for m in messages if m[0] == "done"]
    won = [u for m in done for u in m[1]]
    history = pg.open().read_aggregate(agg)
    assert firsts.count(True) == 1
    assert sum(m[3] for m in done) == 0  # every loser got ConcurrencyError, nothing else
    assert sum(m[2] for m in done) >= RACERS - 1
    assert [e.version for e in history] == list(range(1, len(history) + 1))
    assert sorted(e.uuid for e in history) == sorted(won)
