"""The async store's appends take the append lock too: readers' horizon counts on every
transaction that can insert events holding it (``stores/postgres/horizon.py``)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import psycopg

from esctl_lib import Event, open_async_store
from esctl_lib.stores.postgres.horizon import append_lock_key
from esctl_lib.testing import eventually
from tests.backends import POSTGRES_DSN
from tests.postgres.conftest import PgSpec


class AsyncHorizonEvent(Event, type_name="async_horizon_event"):
    pass


def test_an_async_append_waits_for_the_append_lock(
    pg: PgSpec, admin: psycopg.Connection[Any],
) -> None:
    """An exclusive holder of the append lock keeps an async append waiting, on that lock:
    so the append takes it, as the sync store's appends do."""
    key = append_lock_key(pg.schema)
    aggregate = str(uuid.uuid4())
    stored: list[Event] = []
    errors: list[BaseException] = []

    async def append() -> None:
        async with open_async_store(POSTGRES_DSN, schema=pg.schema) as store:
            stored.extend(await store.append(
                [AsyncHorizonEvent(aggregate_id=aggregate, body={})], expected_version=0))

    def run() -> None:
        try:
            asyncio.run(append())
        except BaseException as e:  # reported by the test below
            errors.append(e)

    with psycopg.connect(POSTGRES_DSN) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (key,))  # exclusive, in a tx
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        high, low = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
        eventually(lambda: admin.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND classid = %s::bigint::oid AND objid = %s::bigint::oid",
            (high, low)).fetchone() is not None,
            what="the async append to wait on the append lock")
        assert stored == []
        holder.rollback()  # releases the lock
    worker.join(timeout=30)
    assert not worker.is_alive() and errors == []
    assert [e.version for e in stored] == [1]
