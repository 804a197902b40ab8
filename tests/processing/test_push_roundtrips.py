"""Round trips on PostgreSQL's push path, counted: from a wake-up to the handler call, and
per event in all (``bench/push_latency.py`` measures the time; this keeps the count).

Every exchange psycopg has with the server goes through ``Connection.wait`` (a statement,
BEGIN, COMMIT, a pipeline sync), so the test counts those calls on the processor's own
connections (application names ``probe pool`` and ``probe reader``, the worker's
listening reader, whose waits for a notification are not exchanges), with the real server and the real
worker.
The appender is another store whose URL differs in spelling only, so that the
processor's store does not wait for "its own" writes (one record per URL and schema).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from esctl_lib import Event, Transaction, handles
from esctl_lib.processing import (
    Processor,
    handles_all,
    list_parked,
    run_processor,
    wait_for,
)
from esctl_lib.processing.parking import skip_event
from esctl_lib.stores.postgres import PostgresStore
from esctl_lib.stores.postgres.horizon import HorizonState
from esctl_lib.stores.postgres.listening_reader import ListeningReader
from tests.postgres.conftest import PgSpec, pg  # noqa: F401  (fixture)

pytestmark = pytest.mark.postgres

#: Round trips from the wake-up (the store's ``wait`` returning) to the handler call: the
#: page with the parked rows among its events (for a processor of some types, with the
#: readable head's key in the same statement)...
MAX_BEFORE_HANDLER = {"every type": 1, "some types": 1}
#: ... and for each horizon refresh on the way (its pipeline, then the page read again)...
PER_REFRESH = 2
#: ... and per event in all (that, then the write transaction: BEGIN, synchronous_commit
#: off, the tracker's compare-and-set, the parked rows again, COMMIT).
MAX_PER_EVENT = {"every type": 6, "some types": 6}


_PIPELINE_TRIPS = ("_sync_gen", "_exit_gen")
_COUNTED = ("probe pool", "probe reader")


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
        if self.info.parameter_status("application_name") in _COUNTED and (
                self._pipeline is None or gen.__name__ in _PIPELINE_TRIPS) and (
                gen.__name__ != "notifies"):
            with found.lock:
                found.count += 1
        return original(self, gen, *args, **kwargs)

    refresh = HorizonState.refresh

    def counted_refresh(self: HorizonState, conn: psycopg.Connection[Any], key: int) -> bool:
        if conn.info.parameter_status("application_name") in _COUNTED:
            with found.lock:
                found.refreshes += 1
        return refresh(self, conn, key)

    monkeypatch.setattr(psycopg.Connection, "wait", wait)
    monkeypatch.setattr(HorizonState, "refresh", counted_refresh)
    yield found


class CountingStore(PostgresStore):
    """The real store; notes the round-trip count each time its worker's wait returns (on
    the worker's listening reader)."""

    counter: Counter
    woke_at = refreshed_at = 0

    def woke(self) -> None:
        self.woke_at, self.refreshed_at = self.counter.count, self.counter.refreshes

    def listening_reader(self) -> ListeningReader:
        reader = super().listening_reader()
        wait = reader.wait

        def noted(position: int, timeout: float) -> bool:
            woke = wait(position, timeout)
            self.woke()
            return woke

        reader.wait = noted  # type: ignore[method-assign]
        return reader


class Noting(Processor):
    """Notes, at each handler call, the round trips since the wake-up and in all."""

    name = "rt_probe"

    def __init__(self, store: CountingStore) -> None:
        self.store = store
        self.before: list[int] = []
        self.at: list[int] = []
        self.refreshes: list[int] = []
        self.seen: list[int] = []

    def note(self, event: Event) -> None:
        counter, store = self.store.counter, self.store
        self.seen.append(event.id or 0)
        self.at.append(counter.count)
        self.before.append(counter.count - store.woke_at)
        self.refreshes.append(counter.refreshes - store.refreshed_at)


class Probe(Noting):
    name = "rt_probe"

    @handles_all
    def _seen(self, event: Event, tx: Transaction) -> None:
        self.note(event)


class TypedProbe(Noting):
    """For one event type (a filtered read)."""

    name = "rt_probe"

    @handles(Ping)
    def _ping(self, event: Ping, tx: Transaction) -> None:
        self.note(event)


def _stores(pg: PgSpec, counter: Counter) -> tuple[CountingStore, PostgresStore]:  # noqa: F811
    store = CountingStore(pg.url, schema=pg.schema, application_name="probe")
    store.counter = counter
    pg.opened.append(store)
    # The same server and database, spelt differently.
    joiner = "&" if "?" in pg.url else "?"
    appender = PostgresStore(f"{pg.url}{joiner}application_name=appender", schema=pg.schema)
    pg.opened.append(appender)
    return store, appender


@contextmanager
def _running(probe: Noting, store: CountingStore) -> Iterator[None]:
    stop = threading.Event()
    worker = threading.Thread(target=run_processor, args=(probe, store),
                              kwargs={"stop": stop, "idle_timeout": 5.0}, daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(10)


def _ping(store: PostgresStore) -> int:
    return store.append([Ping(aggregate_id=str(uuid.uuid4()))])[0].id or 0


@pytest.mark.parametrize("kind", ["every type", "some types"])
def test_push_round_trips(pg: PgSpec, counter: Counter, kind: str) -> None:  # noqa: F811
    store, appender = _stores(pg, counter)
    probe: Noting = Probe(store) if kind == "every type" else TypedProbe(store)
    assert (probe.types() is None) == (kind == "every type")
    wakes = 6
    with _running(probe, store):
        assert wait_for(appender, Probe.name, _ping(appender), timeout=30)
        for _ in range(wakes):
            assert wait_for(appender, Probe.name, _ping(appender), timeout=30)
            time.sleep(0.05)  # idle again: the next event arrives on a wake-up
    before = probe.before[1:]  # the warm-up event met the processor starting
    refreshes = probe.refreshes[1:]
    per_event = [b - a for a, b in zip(probe.at[1:], probe.at[2:], strict=False)]
    assert len(before) == wakes
    for trips, refreshed in zip(before, refreshes, strict=True):
        assert trips <= MAX_BEFORE_HANDLER[kind] + PER_REFRESH * refreshed, (before, refreshes)
    quiet = [n for n, r in zip(per_event, refreshes[1:], strict=True) if not r]
    # A notification of the previous event can reach the listener after the worker read
    # that event (it was awake already): the next wait then returns at once and the worker
    # reads an empty page, one round trip more (seen once in a CI run: [7, 6, 6, 6, 6]).
    # So one interval may carry that one extra read; the rest keep the bound.
    over = [n for n in quiet if n > MAX_PER_EVENT[kind]]
    assert len(over) <= 1 and all(n <= MAX_PER_EVENT[kind] + 1 for n in over), (
        per_event, refreshes)
    assert len(quiet) >= 3, (per_event, refreshes)


@pytest.mark.parametrize("kind", ["every type", "some types"])
def test_parked_ahead_never_reaches_the_handler(pg: PgSpec, counter: Counter,  # noqa: F811
                                                kind: str) -> None:
    """An event parked by hand before the worker reads it is skipped (the parked rows read
    in the page's own statement)."""
    store, appender = _stores(pg, counter)
    probe: Noting = Probe(store) if kind == "every type" else TypedProbe(store)
    first, second, third = _ping(appender), _ping(appender), _ping(appender)
    skip_event(appender, Probe.name, second, reason="by hand")
    with _running(probe, store):  # its first page holds all three, and the parked row
        assert wait_for(appender, Probe.name, third, timeout=30)
    assert probe.seen == [first, third]
    assert [p.event_id for p in list_parked(appender, Probe.name)] == [second]
