"""The reader horizon counts only transactions that can still insert events into this store
(``esctl_lib/stores/postgres/horizon.py``)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from esctl_lib import EsctlError, Event, StoreError
from esctl_lib.stores.postgres.horizon import append_lock_key, compute_bound
from esctl_lib.testing import eventually
from tests.backends import POSTGRES_DSN
from tests.postgres.conftest import PgSpec

OTHER_DB = "test_horizon_other"


def ev(n: int) -> Event:
    return Event(aggregate_id=str(uuid.uuid4()), type="pg_horizon", body={"n": n})


def other_database_url() -> str:
    """A DSN for a second database of the same server (created when missing)."""
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (OTHER_DB,)).fetchone()
        if not found:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # made meanwhile
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(OTHER_DB)))
    return POSTGRES_DSN.rsplit("/", 1)[0] + "/" + OTHER_DB


@pytest.fixture
def idle_elsewhere() -> Iterator[psycopg.Connection[Any]]:
    """A session idle in a transaction that holds an id, in another database."""
    with psycopg.connect(other_database_url()) as conn:
        conn.execute("SELECT pg_current_xact_id()")
        yield conn
        conn.rollback()


def cheap_bound_hides(pg: PgSpec, event_id: int) -> bool:
    """Whether the old rule (read below pg_snapshot_xmin) would hide this event."""
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg.schema)))
        row = conn.execute("SELECT tx >= pg_snapshot_xmin(pg_current_snapshot()) "
                           "FROM events WHERE id = %s", (event_id,)).fetchone()
    return bool(row and row[0])


def test_a_session_idle_in_another_database_hides_nothing(
    pg: PgSpec, idle_elsewhere: psycopg.Connection[Any],
) -> None:
    writer, reader = pg.open(), pg.open(own_writes_wait=0.0)
    [stored] = writer.append([ev(1)])
    assert stored.id is not None
    assert cheap_bound_hides(pg, stored.id)  # the old horizon would stall here
    assert [e.id for e in reader.read_page(0).events] == [stored.id]
    assert reader.latest_position() == stored.id
    assert reader.count() == 1
    assert reader.wait(0, timeout=0.0)
    horizon = reader.reader_horizon()
    assert horizon.pending == 0 and horizon.pid is None


def test_a_transaction_that_wrote_only_its_own_tables_hides_nothing(pg: PgSpec) -> None:
    writer, reader = pg.open(), pg.open(own_writes_wait=0.0)
    with psycopg.connect(pg.url) as raw, pg.open().transaction() as tx:
        raw.execute("CREATE TEMPORARY TABLE mine (n int)")
        raw.execute("INSERT INTO mine VALUES (1)")  # psql-like: an id, no append lock
        tx.set_tracker("pg_read_model", 0)  # a projector batch: it wrote read-model rows
        [stored] = writer.append([ev(1)])
        assert stored.id is not None
        assert cheap_bound_hides(pg, stored.id)
        assert [e.id for e in reader.read_page(0).events] == [stored.id]
        assert reader.reader_horizon().pid is None
        raw.rollback()


def test_a_lock_holder_without_an_id_yet_hides_nothing(pg: PgSpec) -> None:
    writer, reader = pg.open(), pg.open(own_writes_wait=0.0)
    with pg.open().transaction() as tx:
        tx.will_append()
        [stored] = writer.append([ev(1)])
        assert [e.id for e in reader.read_page(0).events] == [stored.id]
        later = tx.append([ev(2)])[0]  # gets its id now, above everything readers noted
    assert [e.id for e in reader.read_page(0).events] == [stored.id, later.id]


def test_an_open_transaction_that_appended_holds_readers_back_and_status_names_it(
    pg: PgSpec,
) -> None:
    writer, reader = pg.open(), pg.open(own_writes_wait=0.0)
    with pg.open(application_name="esctl blocker-test").transaction() as tx:
        first = tx.append([ev(1)])[0]
        [pid] = tx.fetchall("SELECT pg_backend_pid()")[0]
        second = writer.append([ev(2)])[0]
        assert reader.read_page(0).events == []
        assert not reader.wait(0, timeout=0.0)
        horizon = reader.reader_horizon()
        assert horizon.pending == 1
        assert horizon.pid == pid
        assert horizon.application is not None and "blocker-test" in horizon.application
        assert horizon.state == "idle in transaction"
    assert [e.id for e in reader.read_page(0).events] == [first.id, second.id]
    assert reader.reader_horizon().pending == 0


def test_will_append_after_a_write_raises(pg: PgSpec) -> None:
    store = pg.open()
    with pytest.raises(StoreError, match="wrote before it started appending"), \
            store.transaction() as tx:
        tx.set_tracker("pg_first", 0)
        tx.will_append()
    with pytest.raises(StoreError, match="will_append"), store.transaction() as tx:
        tx.set_tracker("pg_first", 0)
        tx.append([ev(1)])
    assert store.read_page(0).events == []


def test_will_append_takes_the_lock_once_and_append_needs_no_second_call(pg: PgSpec) -> None:
    store = pg.open()
    with store.transaction() as tx:
        tx.will_append()
        tx.set_tracker("pg_first", 0)
        tx.will_append()  # already held: no check, no error
        tx.append([ev(1)])
        tx.append([ev(2)])
    assert len(store.read_page(0).events) == 2


def test_every_appending_transaction_holds_the_shared_lock(
    pg: PgSpec, admin: psycopg.Connection[Any],
) -> None:
    key = append_lock_key(pg.schema)
    high, low = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    query = ("SELECT mode, granted FROM pg_locks WHERE locktype = 'advisory' "
             "AND classid = %s::bigint::oid AND objid = %s::bigint::oid AND objsubid = 1")
    one, two = pg.open(), pg.open()
    with one.transaction() as a, two.transaction() as b:
        a.append([ev(1)])
        b.append([ev(2)])  # shared: writers never wait for each other on it
        rows = admin.execute(query, (high, low)).fetchall()
    assert rows == [("ShareLock", True), ("ShareLock", True)]
    assert admin.execute(query, (high, low)).fetchall() == []


def test_the_store_sets_an_idle_in_transaction_timeout(pg: PgSpec) -> None:
    with pg.open().connection() as conn:
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone() == ("1min",)
    store = pg.open(idle_in_transaction_timeout=0.3)
    with pytest.raises(EsctlError), store.transaction() as tx:
        tx.will_append()
        [pid] = tx.fetchall("SELECT pg_backend_pid()")[0]
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
            eventually(lambda: admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s",
                                             (pid,)).fetchone() is None,
                       what="the server to end the idle transaction")
        tx.append([ev(1)])
    assert pg.open().read_page(0).events == []


# -- the bound from a refresh's facts (prepared transactions cannot be made on a server
#    with max_prepared_transactions = 0, so the fallback is checked here on its facts) --

E = 1 << 32


def test_the_bound_is_xmax_when_no_holder_has_an_id() -> None:
    found = compute_bound(100, 120, [100, 105], {7: 100, 8: 105}, [9])
    assert (found.value, found.blocker) == (120, None)


def test_the_bound_is_the_oldest_holder_with_an_id() -> None:
    found = compute_bound(100, 120, [100, 105, 110], {7: 100, 8: 105, 9: 110}, [9, 8])
    assert (found.value, found.blocker, found.pid) == (105, 105, 8)


def test_a_holder_whose_id_came_after_the_snapshot_bounds_nothing() -> None:
    found = compute_bound(100, 120, [100], {7: 100, 9: 125}, [9])
    assert found.value == 120


def test_ids_are_matched_across_epochs() -> None:
    found = compute_bound(3 * E + 5, 3 * E + 9, [3 * E + 5, 3 * E + 7], {4: 7}, [4])
    assert (found.value, found.blocker) == (3 * E + 7, 3 * E + 7)


def test_a_prepared_transaction_holding_the_lock_falls_back_to_the_oldest_in_progress() -> None:
    found = compute_bound(100, 120, [100, 105], {8: 105}, [8, None])
    assert (found.value, found.blocker, found.prepared) == (100, None, True)
