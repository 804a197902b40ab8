"""The autocommit append's statements go through libpq as prepared statements
(``stores/postgres/prepared.py``): what the cursor did still holds."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from typing import Any

import psycopg
import pytest

from esctl_lib import ConcurrencyError, Event, StoreUnavailableError
from esctl_lib.stores.postgres.horizon import append_lock_key
from esctl_lib.stores.postgres.prepared import first_column
from esctl_lib.testing import eventually
from tests.postgres.conftest import PgSpec


class Noted(Event, type_name="prepared_noted"):
    pass


def _event(agg: str, **body: Any) -> Noted:
    return Noted(aggregate_id=agg, body=body or {"n": 1})


def _prepared_names(store: Any) -> set[str]:
    with store.connection() as conn:
        rows = conn.execute("SELECT name FROM pg_prepared_statements").fetchall()
    return {r[0] for r in rows}


def test_appends_are_prepared_once_per_connection_under_their_own_names(pg: PgSpec) -> None:
    store = pg.open(pool_size=2)
    agg = str(uuid.uuid4())
    for version in range(5):
        store.append([_event(agg)], expected_version=version)
    names = {n for n in _prepared_names(store) if n.startswith("esctl_")}
    # the first event's statement (version read) and the known-head ones, notifying or not:
    # each prepared once, not once an append
    assert 2 <= len(names) <= 4
    assert [e.version for e in store.read_aggregate(agg)] == [1, 2, 3, 4, 5]


def test_a_statement_deallocated_behind_the_store_is_prepared_again(pg: PgSpec) -> None:
    store = pg.open(pool_size=2)
    agg = str(uuid.uuid4())
    store.append([_event(agg)], expected_version=0)
    store.append([_event(agg)], expected_version=1)
    with store.connection() as conn:
        conn.execute("DEALLOCATE ALL")
    stored = store.append([_event(agg)], expected_version=2)
    assert [e.version for e in stored] == [3]
    assert store.aggregate_version(agg) == 3


def test_text_parameters_keep_every_value(pg: PgSpec) -> None:
    """Non-ASCII text, times, links and metadata arrive as the cursor sent them."""
    store = pg.open()
    agg = str(uuid.uuid4())
    first = store.append([_event(agg, title="Grüße, 東京 ✓", n=2**40)], expected_version=0)[0]
    linked = Noted(aggregate_id=agg, body={"x": None}, correlation_id=first.uuid,
                   causation_id=first.uuid, metadata={"who": "Zoë"})
    second = store.append([linked], expected_version=1)[0]
    read = {e.version: e for e in pg.open().read_aggregate(agg)}
    assert read[1].body == {"title": "Grüße, 東京 ✓", "n": 2**40}
    assert read[1].created_at == first.created_at
    assert (read[2].correlation_id, read[2].causation_id) == (first.uuid, first.uuid)
    assert read[2].metadata == {"who": "Zoë"} and read[2].created_at == second.created_at


def test_a_connection_in_another_encoding_uses_the_cursor(pg: PgSpec) -> None:
    store = pg.open(pool_size=2)
    agg = str(uuid.uuid4())
    with store.connection() as conn:
        conn.execute("SET client_encoding TO 'LATIN1'")
        assert conn.info.encoding != "utf-8"
        rows = first_column(conn, "SELECT 41 + %s::int", (1,))
        assert rows == [(42,)]
        conn.execute("SET client_encoding TO 'UTF8'")
    store.append([_event(agg, title="é")], expected_version=0)
    assert store.read_aggregate(agg)[0].body == {"title": "é"}


def test_a_wrong_version_is_refused_and_the_connection_stays_usable(pg: PgSpec) -> None:
    store = pg.open(pool_size=2)
    agg = str(uuid.uuid4())
    store.append([_event(agg)], expected_version=0)
    for _ in range(3):
        with pytest.raises(ConcurrencyError):
            store.append([_event(agg)], expected_version=0)
    assert [e.version for e in store.append([_event(agg)], expected_version=1)] == [2]


def test_a_killed_backend_is_store_unavailable_and_the_next_append_reconnects(
    pg: PgSpec, admin: psycopg.Connection[Any]
) -> None:
    name = f"esctl-killed-{uuid.uuid4().hex[:8]}"  # this test's connections only
    store = pg.open(pool_size=2, application_name=name)
    agg = str(uuid.uuid4())
    store.append([_event(agg)], expected_version=0)
    killed = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name LIKE %s",
        (f"{name} %",)).fetchall()
    assert killed
    for version in (1, 2):  # the dead connection fails once; then the pool has new ones
        try:
            store.append([_event(agg)], expected_version=version)
        except StoreUnavailableError:  # nothing was written: send it again
            store.append([_event(agg)], expected_version=version)
    assert store.aggregate_version(agg) == 3
    assert [e.version for e in store.read_aggregate(agg)] == [1, 2, 3]


def test_ctrl_c_while_the_append_waits_cancels_it_on_the_server(
    pg: PgSpec, admin: psycopg.Connection[Any]
) -> None:
    """An append waiting on the append lock (held exclusively elsewhere) is interrupted by
    SIGINT: KeyboardInterrupt, the statement cancelled on the server, nothing written."""
    name = f"esctl-ctrl-c-{uuid.uuid4().hex[:8]}"  # this test's connections only
    store = pg.open(pool_size=2, application_name=name)
    agg = str(uuid.uuid4())
    store.append([_event(agg)], expected_version=0)
    holder = psycopg.connect(admin.info.dsn, autocommit=False)
    holder.execute(f"SET search_path TO {pg.schema}")
    holder.execute("SELECT pg_advisory_xact_lock(%s)", (append_lock_key(pg.schema),))

    def waiting() -> bool:
        return bool(admin.execute(
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND application_name LIKE %s AND state = 'active'", (f"{name} %",)).fetchone())

    cancelled: list[bool] = []

    def interrupt() -> None:
        try:
            eventually(waiting, what="the append to wait on the lock")
        finally:  # never leave the append waiting on the lock
            os.kill(os.getpid(), signal.SIGINT)
            try:
                eventually(lambda: not waiting(), what="the append to be cancelled")
                cancelled.append(True)
            except AssertionError:
                cancelled.append(False)
            holder.rollback()  # lets an append that was not cancelled go on (and fail)

    # a shell may start the tests with SIGINT ignored: raise KeyboardInterrupt, as a terminal's
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    thread = threading.Thread(target=interrupt, daemon=True)
    thread.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            store.append([_event(agg)], expected_version=1)
        thread.join(timeout=30)
    finally:
        signal.signal(signal.SIGINT, previous)
        holder.close()
    assert cancelled == [True], "the append went on waiting on the server after Ctrl-C"
    assert store.aggregate_version(agg) == 1
    assert [e.version for e in store.append([_event(agg)], expected_version=1)] == [2]
