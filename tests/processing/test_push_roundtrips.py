"""Round trips on PostgreSQL's push path, counted: from a wake-up to the handler call, and
per event in all (``bench/push_latency.py`` measures the time; this keeps the count).

Every exchange psycopg has with the server goes through ``Connection.wait`` (a statement,
BEGIN, COMMIT, a pipeline sync), so the test counts those calls on the processor's own
connections (application name ``probe pool``), with the real server and the real worker.
The appender is another store whose URL differs in spelling only, so that the
processor's store does not wait for "its own" writes (one record per URL and schema).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from esctl_lib import Event, Transaction
from esctl_lib.processing import Processor, handles_all, run_processor, wait_for
from esctl_lib.stores.postgres import PostgresStore
from esctl_lib.stores.postgres.horizon import HorizonState
from tests.postgres.conftest import PgSpec, pg  # noqa: F401  (fixture)

pytestmark = pytest.mark.postgres

#: Round trips from the wake-up (the store's ``wait`` returning) to the handler call...
MAX_BEFORE_HANDLER = 1
#: ... and for each horizon refresh on the way (its pipeline, then the page read again).
PER_REFRESH = 2
#: Round trips per event in all (read, write transaction, the idle check before waiting).
MAX_PER_EVENT = 7


_PIPELINE_TRIPS = ("_sync_gen", "_exit_gen")


class Ping(Event, type_name="rt_ping"):
    pass


class Counter:
    """Counts ``Connection.wait`` calls on connections named ``probe …``."""

    def __init__(self) -> None:
        self.count = 0
        #: Horizon refreshes: other sessions' transactions hold the cheap bound back.
        self.refreshes = 0
        self.lock = threading.Lock()


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter]:
    found = Counter()
    original = psycopg.Connection.wait

    def wait(self: psycopg.Connection[Any], gen: Any, *args: Any, **kwargs: Any) -> Any:
        # In a pipeline only its sync (or its end) waits for the server.
        if self.info.parameter_status("application_name") == "probe pool" and (
                self._pipeline is None or gen.__name__ in _PIPELINE_TRIPS):
            with found.lock:
                found.count += 1
        return original(self, gen, *args, **kwargs)

    refresh = HorizonState.refresh

    def counted_refresh(self: HorizonState, conn: psycopg.Connection[Any], key: int) -> bool:
        if conn.info.parameter_status("application_name") == "probe pool":
            with found.lock:
                found.refreshes += 1
        return refresh(self, conn, key)

    monkeypatch.setattr(psycopg.Connection, "wait", wait)
    monkeypatch.setattr(HorizonState, "refresh", counted_refresh)
    yield found


class CountingStore(PostgresStore):
    """The real store; notes the round-trip count each time ``wait`` returns."""

    counter: Counter
    woke_at = refreshed_at = 0

    def wait(self, position: int, timeout: float) -> bool:
        woke = super().wait(position, timeout)
        self.woke_at, self.refreshed_at = self.counter.count, self.counter.refreshes
        return woke


class Probe(Processor):
    name = "rt_probe"

    def __init__(self, store: CountingStore) -> None:
        self.store = store
        self.before: list[int] = []
        self.at: list[int] = []
        self.refreshes: list[int] = []

    @handles_all
    def _seen(self, event: Event, tx: Transaction) -> None:
        self.at.append(self.store.counter.count)
        counter, store = self.store.counter, self.store
        self.before.append(counter.count - store.woke_at)
        self.refreshes.append(counter.refreshes - store.refreshed_at)


def test_push_round_trips(pg: PgSpec, counter: Counter) -> None:  # noqa: F811
    store = CountingStore(pg.url, schema=pg.schema, application_name="probe")
    store.counter = counter
    pg.opened.append(store)
    # The same server and database, spelt differently.
    joiner = "&" if "?" in pg.url else "?"
    appender = PostgresStore(f"{pg.url}{joiner}application_name=appender", schema=pg.schema)
    pg.opened.append(appender)
    probe = Probe(store)
    stop = threading.Event()
    worker = threading.Thread(target=run_processor, args=(probe, store),
                              kwargs={"stop": stop, "idle_timeout": 5.0}, daemon=True)
    worker.start()
    try:
        warm = appender.append([Ping(aggregate_id=str(uuid.uuid4()))])[0].id or 0
        assert wait_for(appender, Probe.name, warm, timeout=30)
        wakes = 0
        for _ in range(6):
            last = appender.append([Ping(aggregate_id=str(uuid.uuid4()))])[0].id or 0
            assert wait_for(appender, Probe.name, last, timeout=30)
            time.sleep(0.05)  # idle again: the next event arrives on a wake-up
            wakes += 1
    finally:
        stop.set()
        worker.join(10)
    before = probe.before[1:]  # the warm-up event met the processor starting
    refreshes = probe.refreshes[1:]
    per_event = [b - a for a, b in zip(probe.at[1:], probe.at[2:], strict=False)]
    print("trips", before, refreshes, per_event)
    assert len(before) == wakes
    for trips, refreshed in zip(before, refreshes, strict=True):
        assert trips <= MAX_BEFORE_HANDLER + PER_REFRESH * refreshed, (before, refreshes)
    quiet = [n for n, r in zip(per_event, refreshes[1:], strict=True) if not r]
    assert all(n <= MAX_PER_EVENT for n in quiet), (per_event, refreshes)
