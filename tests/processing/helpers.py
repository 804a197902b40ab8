"""Small processors and store helpers shared by the processing tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from esctl_lib import Event, EventStore, Transaction, handles
from esctl_lib.processing import BatchTransaction, Projector, is_readable
from esctl_lib.testing import eventually
from tests.processing.events import ProcItemAdded, ProcItemRemoved, ProcRareThing


def new_id() -> str:
    return str(uuid.uuid4())


def readable(store: EventStore, stored: list[Event]) -> list[Event]:
    """Wait until the appended events are readable, and return them.

    On a PostgreSQL server shared with other work, a transaction open elsewhere holds
    readers back for a moment; on the other backends this returns at once.
    """
    wait_readable(store, stored[-1].id or 0)
    return stored


def wait_readable(store: EventStore, position: int) -> None:
    eventually(lambda: is_readable(store, position), timeout=30,
               what=f"event {position} to be readable")


def add_items(store: EventStore, count: int, *, aggregate: str | None = None) -> list[Event]:
    """Append ``count`` ProcItemAdded events of one aggregate in one transaction."""
    agg = aggregate or new_id()
    return readable(store, store.append(
        [ProcItemAdded(aggregate_id=agg, body={"n": i}) for i in range(count)]
    ))


def add_one(store: EventStore, cls: type[Event] = ProcItemAdded, **body: Any) -> Event:
    return readable(store, store.append([cls(aggregate_id=new_id(), body=body)]))[0]


class ItemCounts(Projector):
    """Counts items per aggregate; fails on an event whose body says ``fail``."""

    name = "proc_item_counts"
    tables = {
        "proc_item_counts": "CREATE TABLE IF NOT EXISTS proc_item_counts "
        "(aggregate_id TEXT PRIMARY KEY, n INTEGER NOT NULL)",
    }

    def __init__(self, fail_when: Callable[[Event], bool] | None = None) -> None:
        self.fail_when = fail_when or (lambda event: bool(event.body.get("fail")))
        self.seen: list[int] = []

    @handles(ProcItemAdded)
    def _added(self, event: Event, tx: BatchTransaction) -> None:
        self.seen.append(event.id or 0)
        if self.fail_when(event):
            raise ValueError(f"cannot count event {event.id}")
        p = tx.placeholder
        tx.defer(
            f"INSERT INTO proc_item_counts (aggregate_id, n) VALUES ({p}, 1) "
            "ON CONFLICT (aggregate_id) DO UPDATE SET n = proc_item_counts.n + 1",
            (event.aggregate_id,),
        )

    @handles(ProcItemRemoved)
    def _removed(self, event: Event, tx: Transaction) -> None:
        self.seen.append(event.id or 0)
        tx.delete("proc_item_counts", where={"aggregate_id": event.aggregate_id})


def counts(store: EventStore) -> dict[str, int]:
    with store.transaction() as tx:
        rows = tx.fetchall("SELECT aggregate_id, n FROM proc_item_counts")
    return {str(a): int(n) for a, n in rows}


class RareCounter(Projector):
    """Counts only the rare events."""

    name = "proc_rare_counter"
    tables = {
        "proc_rare_seen": "CREATE TABLE IF NOT EXISTS proc_rare_seen (event_id BIGINT PRIMARY KEY)"
    }

    @handles(ProcRareThing)
    def _rare(self, event: Event, tx: Transaction) -> None:
        tx.insert("proc_rare_seen", {"event_id": event.id})


def add_filler(store: EventStore, backend: str, count: int) -> None:
    """Append ``count`` ProcItemRemoved events of one aggregate, fast, in one transaction.

    SQLite and PostgreSQL generate the rows in SQL; the memory store goes through append.
    """
    agg = new_id()
    if backend == "memory":
        for start in range(0, count, 10_000):
            chunk = new_id()
            store.append([ProcItemRemoved(aggregate_id=chunk)
                          for _ in range(min(10_000, count - start))])
        return
    with store.transaction() as tx:
        tx.execute(FILLER_SQL[backend], (count, agg))
        last = tx.fetchall("SELECT max(id) FROM events")[0][0]
    wait_readable(store, int(last))


FILLER_SQL = {
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
    "INSERT INTO events (uuid, aggregate_id, type, body, version, created_at) "
    "SELECT lower(hex(randomblob(16))), ?, 'proc_item_removed', '{}', i, "
    "'2024-01-01T00:00:00.000000+00:00' FROM n",
    "postgres": "INSERT INTO events (uuid, aggregate_id, type, body, version, created_at) "
    "SELECT gen_random_uuid(), a.agg, 'proc_item_removed', '{}'::jsonb, i, now() "
    "FROM generate_series(1, %s) AS i CROSS JOIN (SELECT %s::uuid AS agg) AS a",
}
