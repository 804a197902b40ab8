"""Connections: loss is a retryable error, no socket crosses a fork, passwords stay hidden."""

from __future__ import annotations

import multiprocessing as mp
import uuid
from typing import Any

import psycopg
import pytest

from esctl_lib import Event, StoreUnavailableError, open_store
from esctl_lib.stores.postgres import PostgresStore
from tests.postgres.conftest import PgSpec


def ev() -> Event:
    return Event(aggregate_id=str(uuid.uuid4()), type="pg_conn")


def kill_pool(admin: psycopg.Connection[Any], application_name: str) -> int:
    rows = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
        (f"{application_name} pool",),
    ).fetchall()
    return len(rows)


def test_a_lost_connection_is_a_store_unavailable_error_and_the_next_call_reconnects(
    pg: PgSpec, admin: psycopg.Connection[Any]
) -> None:
    name = f"esctl-test-{uuid.uuid4().hex[:8]}"
    store = pg.open(application_name=name, pool_size=2)
    store.append([ev()])
    assert kill_pool(admin, name) >= 1
    with pytest.raises(StoreUnavailableError):
        store.latest_position()
    assert store.latest_position() == 1


def test_an_unreachable_server_is_a_store_unavailable_error() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test", connect_timeout=1.0)
    try:
        with pytest.raises(StoreUnavailableError):
            store.latest_position()
    finally:
        store.close()


def test_nothing_connects_before_first_use() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test")
    assert store.listener_pid is None
    store.close()


def _use_in_child(store: PostgresStore, out: Any) -> None:
    stored = store.append([ev()])[0]
    out.put(stored.id)


def test_a_store_used_after_a_fork_opens_its_own_connections(pg: PgSpec) -> None:
    store = pg.open()
    store.append([ev()])
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_use_in_child, args=(store, out))
    child.start()
    child_id = out.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert child_id == 2
    assert [e.id for e in store.read_after(0)] == [1, 2]
    store.append([ev()])
    assert store.latest_position() == 3


def test_the_display_url_masks_the_password() -> None:
    store = open_store("postgresql://app:s3cret@db.example:5432/prod")
    try:
        assert store.display_url == "postgresql://app:***@db.example:5432/prod"
    finally:
        store.close()
