"""Schema 3 on SQLite (``003_lean_events.sql``): 16-byte uuids, partial indexes, and the
in-place upgrade of a store created at schema 1, with its data (issue 15).

The store contract runs on a store upgraded in place (``TestUpgradedSqlite``) and on one
still at schema 1 (``TestTextUuidsSqlite``: new code before ``esctl setup`` ran)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from esctl_lib import ConcurrencyError, DuplicateEventError, Event, EventStore, open_store
from esctl_lib.stores.schema_files import latest_version, schema_files
from esctl_lib.stores.sqlite import split_sql
from esctl_lib.stores.sqlite.uuids import COMPACT_SINCE, register
from esctl_lib.testing import EventStoreContract


class LeanItemAdded(Event, type_name="lean_item_added"):
    pass


def create_at_schema_1(path: Path, *, below: int = 2) -> None:
    """A store as ``esctl setup`` of a version that knew only the schema files below
    ``below`` created it (by default schema 1 alone)."""
    files = [f for f in schema_files("sqlite") if f.version < below]
    assert files and files[0].version == 1
    conn = sqlite3.connect(path, isolation_level=None)
    register(conn)  # esctl_uuid_blob(), for a file list that reaches 003_lean_events.sql
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE schema_version "
                     "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
        for f in files:
            for statement in split_sql(f.sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                         (f.version, f.name, time.time()))
    finally:
        conn.close()


def raw(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_a_fresh_store_keeps_uuids_as_16_bytes_and_indexes_no_nulls(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    store = open_store(f"sqlite:///{path}")
    store.setup()
    agg, corr = str(uuid.uuid4()), str(uuid.uuid4())
    stored = store.append([LeanItemAdded(aggregate_id=agg, body={"n": 1}, correlation_id=corr),
                           LeanItemAdded(aggregate_id=agg, body={"n": 2})])
    store.close()
    assert raw(path, "SELECT typeof(uuid), length(uuid), typeof(aggregate_id), "
                     "typeof(correlation_id) FROM events ORDER BY id") == [
        ("blob", 16, "blob", "blob"), ("blob", 16, "blob", "null")]
    # the partial indexes hold only the events that have the id
    assert raw(path, "SELECT count(*) FROM events INDEXED BY events_correlation_id "
                     "WHERE correlation_id IS NOT NULL") == [(1,)]
    sql = dict(raw(path, "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                         "AND name LIKE 'events_%'"))
    assert "WHERE correlation_id IS NOT NULL" in str(sql["events_correlation_id"])
    assert "WHERE causation_id IS NOT NULL" in str(sql["events_causation_id"])
    again = open_store(f"sqlite:///{path}")
    try:
        events = again.read_aggregate(agg)
        assert [e.uuid for e in events] == [e.uuid for e in stored]
        assert events[0].correlation_id == corr and events[1].correlation_id is None
        assert again.existing_uuids([stored[0].uuid.upper(), "not a uuid", str(uuid.uuid4())]) \
            == {stored[0].uuid}
    finally:
        again.close()


def test_setup_upgrades_a_schema_1_store_in_place_keeping_every_event(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    create_at_schema_1(path)
    old = open_store(f"sqlite:///{path}")
    assert old.schema_version() == 1
    aggs = [str(uuid.uuid4()) for _ in range(3)]
    corr, cause = str(uuid.uuid4()), str(uuid.uuid4())
    written = []
    for i in range(30):  # written by this code at schema 1: text uuids
        written += old.append([LeanItemAdded(
            aggregate_id=aggs[i % 3], body={"i": i, "tags": ["a", "b"], "x": 1.5},
            correlation_id=corr if i % 2 else None, causation_id=cause if i % 5 == 0 else None,
            metadata={"tenant": "t"} if i == 7 else None,
            created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC) if i == 3 else None)])
    old.close()
    assert raw(path, "SELECT DISTINCT typeof(uuid) FROM events") == [("text",)]
    before = raw(path, "SELECT id, type, body, version, created_at, metadata FROM events "
                       "ORDER BY id")

    store = open_store(f"sqlite:///{path}")
    try:
        assert "applied schema 003_lean_events" in store.setup()
        assert store.schema_version() == latest_version("sqlite") >= 3
        assert raw(path, "SELECT DISTINCT typeof(uuid), typeof(aggregate_id) FROM events") == [
            ("blob", "blob")]
        # ids, bodies, versions, times and metadata unchanged, byte for byte
        assert raw(path, "SELECT id, type, body, version, created_at, metadata FROM events "
                         "ORDER BY id") == before
        page = store.read_page(0, limit=100)
        assert [(e.id, e.uuid, e.aggregate_id, e.version, e.correlation_id, e.causation_id,
                 e.created_at, e.body, e.metadata) for e in page.events] == [
            (e.id, e.uuid, e.aggregate_id, e.version, e.correlation_id, e.causation_id,
             e.created_at, e.body, e.metadata) for e in written]
        for agg in aggs:
            assert [e.version for e in store.read_aggregate(agg)] == list(range(1, 11))
            assert store.aggregate_version(agg) == 10
        # the guarantees hold across the upgrade: versions, unique uuids
        with pytest.raises(ConcurrencyError):
            store.append([LeanItemAdded(aggregate_id=aggs[0])], expected_version=9)
        with pytest.raises(DuplicateEventError) as info:
            store.append([LeanItemAdded(aggregate_id=aggs[1], uuid=written[0].uuid)])
        assert info.value.uuid == written[0].uuid
        new = store.append([LeanItemAdded(aggregate_id=aggs[0])], expected_version=10)
        assert new[0].id == 31 and new[0].version == 11
        assert store.existing_uuids([written[5].uuid, new[0].uuid]) == {
            written[5].uuid, new[0].uuid}
        assert store.setup() == [f"schema is up to date (version {latest_version('sqlite')})"]
    finally:
        store.close()


def test_a_running_store_notices_the_upgrade_under_it(tmp_path: Path) -> None:
    """A process that opened the store at schema 1 writes the new form once another one
    (``esctl setup``) upgraded the table: its aggregate is no longer found by a text key
    (an event at an expected version), the schema cookie moved (a first event)."""
    path = tmp_path / "events.db"
    create_at_schema_1(path)
    running = open_store(f"sqlite:///{path}")
    agg, first, second = (str(uuid.uuid4()) for _ in range(3))
    try:
        running.append([LeanItemAdded(aggregate_id=agg)], expected_version=0)
        running.append([LeanItemAdded(aggregate_id=first)], expected_version=0)
        upgrader = open_store(f"sqlite:///{path}")
        upgrader.setup()
        upgrader.close()
        running.append([LeanItemAdded(aggregate_id=second)], expected_version=0)
        running.append([LeanItemAdded(aggregate_id=agg)], expected_version=1)
        with pytest.raises(ConcurrencyError):  # found in the new form: at version 1
            running.append([LeanItemAdded(aggregate_id=first)], expected_version=0)
        assert [e.version for e in running.read_aggregate(agg)] == [1, 2]
        assert [e.version for e in running.read_aggregate(second)] == [1]
        assert raw(path, "SELECT DISTINCT typeof(uuid) FROM events") == [("blob",)]
        assert raw(path, "SELECT DISTINCT typeof(aggregate_id) FROM events") == [("blob",)]
    finally:
        running.close()


class TestUpgradedSqlite(EventStoreContract):
    """The contract on a store created at schema 1 with data, upgraded by ``setup()``,
    then emptied (the contract wants an empty store)."""

    def make_store(self) -> EventStore:
        path = self.tmp_path / "events.db"
        if not path.exists():
            create_at_schema_1(path)
            seed = open_store(f"sqlite:///{path}")
            agg = uuid.uuid4()
            seed.append([LeanItemAdded(aggregate_id=agg) for _ in range(3)])
            seed.setup()  # the upgrade, with data in the table
            seed.close()
            raw_conn = sqlite3.connect(path)
            raw_conn.execute("DELETE FROM events")
            raw_conn.commit()
            raw_conn.close()
        return open_store(f"sqlite:///{path}")

    def open_again(self) -> EventStore:
        return self.make_store()


class TestTextUuidsSqlite(EventStoreContract):
    """The contract on a store still at text uuids (schema 2: every file before the one
    that makes them 16 bytes), opened by this code: the contract's own ``setup()`` is what
    would upgrade it, so it is skipped here."""

    def make_store(self) -> EventStore:
        path = self.tmp_path / "events.db"
        if not path.exists():
            create_at_schema_1(path, below=COMPACT_SINCE)
        store = open_store(f"sqlite:///{path}")
        store.setup = lambda: []  # type: ignore[method-assign]  # stay at text uuids
        return store

    def open_again(self) -> EventStore:
        return self.make_store()
