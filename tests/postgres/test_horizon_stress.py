"""Attack the reader horizon (``stores/postgres/horizon.py``): writers, reactor-like
transactions that declare ``will_append`` and write before they append, transactions that
write only their own rows, and sessions idle in transaction in another database and in this
one, all at once, while a follower checks that it sees every committed event exactly once
and each aggregate's events in version order.

A prepared transaction joins in when the server allows them (``max_prepared_transactions``
> 0); the test server here has 0, and the fallback is then checked on its facts in
``test_horizon_rules.py``.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import defaultdict
from typing import Any

import psycopg
import pytest

from esctl_lib import Event
from esctl_lib.testing import eventually
from tests.postgres.conftest import PgSpec
from tests.postgres.test_horizon_rules import other_database_url

WRITERS = 3
APPENDS = 120  # per writer
REACTOR_BATCHES = 60
PROJECTOR_BATCHES = 80


def ev(agg: str, n: int) -> Event:
    return Event(aggregate_id=agg, type="pg_stress", body={"n": n})


@pytest.mark.slow
def test_a_follower_sees_every_event_once_and_in_version_order_under_attack(
    pg: PgSpec,
) -> None:
    committed: set[str] = set()
    lock = threading.Lock()
    errors: list[BaseException] = []
    done, stop = threading.Event(), threading.Event()

    def record(events: list[Event]) -> None:
        with lock:
            committed.update(e.uuid for e in events)

    def guarded(fn: Any) -> Any:
        def run() -> None:
            try:
                fn()
            except BaseException as e:  # reported by the main thread
                errors.append(e)
        return run

    def writer(seed: int) -> None:
        store, rng = pg.open(), random.Random(seed)
        aggs = [str(uuid.uuid4()) for _ in range(4)]
        versions = dict.fromkeys(aggs, 0)
        for i in range(APPENDS):
            agg = rng.choice(aggs)
            batch = [ev(agg, i) for _ in range(1 if rng.random() < 0.7 else 2)]
            stored = store.append(batch, expected_version=versions[agg])
            versions[agg] += len(stored)
            record(stored)

    def reactor(seed: int) -> None:  # declares, writes its own row, then emits
        store, rng = pg.open(), random.Random(seed)
        agg = str(uuid.uuid4())
        for i in range(REACTOR_BATCHES):
            with store.transaction() as tx:
                tx.will_append()
                tx.set_tracker(f"pg_stress_reactor_{seed}", 0)
                if rng.random() < 0.3:
                    threading.Event().wait(rng.random() * 0.01)  # a handler working
                stored = tx.append([ev(agg, i)], expected_version=i)
            record(stored)

    def projector(seed: int) -> None:  # writes read-model rows only, sometimes slowly
        store, rng = pg.open(), random.Random(seed)
        with store.transaction() as tx:
            tx.execute("CREATE TABLE pg_stress_model (n int)")
        for i in range(PROJECTOR_BATCHES):
            with store.transaction() as tx:
                tx.execute("INSERT INTO pg_stress_model VALUES (%s)", (i,))
                if rng.random() < 0.2:
                    threading.Event().wait(rng.random() * 0.05)

    seen: dict[str, int] = {}
    per_agg: dict[str, list[int]] = defaultdict(list)

    def follower() -> None:
        store = pg.open(own_writes_wait=0.0)
        position = 0
        while not stop.is_set():
            finished = done.is_set()
            page = store.read_page(position, limit=50)
            for e in page.events:
                assert e.uuid not in seen, f"event {e.id} read twice"
                seen[e.uuid] = e.id or 0
                per_agg[str(e.aggregate_id)].append(e.version)
            position = page.end
            if finished and not page.events:
                with lock:
                    if committed <= seen.keys():
                        return
            if not page.events:
                store.wait(position, timeout=0.05)

    other = psycopg.connect(other_database_url())
    here = psycopg.connect(pg.url)
    prepared: str | None = None
    try:
        other.execute("SELECT pg_current_xact_id()")  # idle in transaction elsewhere
        here.execute("CREATE TEMPORARY TABLE mine (n int)")
        here.execute("INSERT INTO mine VALUES (1)")  # idle in transaction here, own table
        allowed = here.execute("SHOW max_prepared_transactions").fetchone()
        if allowed is not None and int(allowed[0]) > 0:  # pragma: no cover - server setting
            prepared = f"esctl_stress_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(pg.url, autocommit=True) as p:
                p.execute("BEGIN")
                p.execute("SELECT pg_current_xact_id()")
                p.execute("PREPARE TRANSACTION %s", (prepared,))  # type: ignore[call-overload]
        workers = [threading.Thread(target=guarded(lambda s=s: writer(s))) for s in range(WRITERS)]
        workers += [threading.Thread(target=guarded(lambda s=s: reactor(s))) for s in (10, 11)]
        workers += [threading.Thread(target=guarded(lambda: projector(20)))]
        reader = threading.Thread(target=guarded(follower), daemon=True)
        reader.start()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        done.set()
        reader.join(timeout=120)
        assert not reader.is_alive(), "the follower never saw every committed event"
    finally:
        done.set()
        stop.set()
        other.rollback()
        other.close()
        here.rollback()
        here.close()
        if prepared is not None:  # pragma: no cover
            with psycopg.connect(pg.url, autocommit=True) as p:
                p.execute(f"ROLLBACK PREPARED '{prepared}'")
    assert not errors, errors
    assert len(committed) >= WRITERS * APPENDS + 2 * REACTOR_BATCHES
    assert set(seen) == committed  # every committed event, each exactly once (checked above)
    for agg, versions in per_agg.items():
        assert versions == list(range(1, len(versions) + 1)), agg
    store = pg.open()
    eventually(lambda: store.count() == len(committed), what="every event to be counted")
