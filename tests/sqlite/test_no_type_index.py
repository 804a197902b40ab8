"""Schema 4 on SQLite (``004_no_type_index.sql``): no ``(type, id)`` index. Reads filtered
on types scan the rowid range from the position; ``estimate_count`` of a type stops after a
bounded scan; ``setup`` upgrades a schema 3 store in place; and this code works on a store
still at schema 3 (``TestSchema3Sqlite``: the store contract, before ``esctl setup`` ran).
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from esctl_lib import Event, EventStore, open_store
from esctl_lib.stores.schema_files import latest_version
from esctl_lib.stores.sqlite import estimates
from esctl_lib.testing import EventStoreContract
from tests.sqlite.test_lean_schema import create_at_schema_1, raw

NO_TYPE_INDEX_SINCE = 4


class NtCommon(Event, type_name="nt_common"):
    pass


class NtRare(Event, type_name="nt_rare"):
    pass


def create_at_schema_3(path: Path) -> None:
    """A store as ``esctl setup`` made it before schema 4 (with the type index)."""
    create_at_schema_1(path, below=NO_TYPE_INDEX_SINCE)


def indexes(path: Path) -> set[str]:
    return {str(r[0]) for r in raw(path, "SELECT name FROM sqlite_master WHERE type = 'index' "
                                         "AND tbl_name = 'events'")}


def fill(store: EventStore) -> list[Event]:
    """330 events over 3 aggregates: every 11th is rare (30), spread evenly."""
    written: list[Event] = []
    for _ in range(3):
        aggregate = str(uuid.uuid4())
        written += store.append([NtRare(aggregate_id=aggregate) if i % 11 == 10
                                 else NtCommon(aggregate_id=aggregate, body={"i": i})
                                 for i in range(110)])
    return written


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    opened = open_store(f"sqlite:///{tmp_path / 'events.db'}")
    opened.setup()
    return opened


def test_a_fresh_store_has_no_type_index_and_reads_types_in_one_rowid_range(
        store: EventStore, tmp_path: Path) -> None:
    assert store.schema_version() == latest_version("sqlite") >= NO_TYPE_INDEX_SINCE
    assert "events_type_id" not in indexes(tmp_path / "events.db")
    fill(store)
    page = store.read_page(100, types=["nt_rare"], limit=5)
    assert [e.id for e in page.events] == [110, 121, 132, 143, 154]
    assert page.end == 154
    assert store.latest_position(types=["nt_rare"]) == 330
    assert store.latest_position(types=["nt_absent"]) == 0
    # The plan of that read: the rowid range from the position, no sort, no other index.
    conn = sqlite3.connect(tmp_path / "events.db")
    try:
        plan = " | ".join(str(r[3]) for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM events WHERE id > ? AND type IN (?) "
            "AND id <= ? ORDER BY id LIMIT ?", (100, "nt_rare", 330, 5)))
    finally:
        conn.close()
    assert "USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in plan, plan
    assert "TEMP B-TREE" not in plan and "INDEX" not in plan.replace("PRIMARY KEY", ""), plan


def test_setup_upgrades_a_schema_3_store_in_place_keeping_every_event(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    create_at_schema_3(path)
    assert "events_type_id" in indexes(path)
    old = open_store(f"sqlite:///{path}")
    old.setup = lambda: []  # type: ignore[method-assign]  # stay at schema 3
    written = fill(old)
    typed_before = [e.id for e in old.read_page(0, types=["nt_rare"], limit=1000).events]
    old.close()
    before = raw(path, "SELECT * FROM events ORDER BY id")

    store = open_store(f"sqlite:///{path}")
    try:
        assert store.schema_version() == NO_TYPE_INDEX_SINCE - 1
        assert store.setup() == [f"applied schema {NO_TYPE_INDEX_SINCE:03d}_no_type_index"]
        assert store.schema_version() == latest_version("sqlite")
        assert "events_type_id" not in indexes(path)
        assert indexes(path) >= {"events_correlation_id", "events_causation_id"}
        assert raw(path, "SELECT * FROM events ORDER BY id") == before  # byte for byte
        assert [e.id for e in store.read_page(0, types=["nt_rare"], limit=1000).events] \
            == typed_before == [e.id for e in written if e.type == "nt_rare"]
        assert raw(path, "PRAGMA integrity_check") == [("ok",)]
        assert store.setup() == [f"schema is up to date (version {latest_version('sqlite')})"]
    finally:
        store.close()


def test_a_rare_type_is_counted_exactly_when_the_scan_reaches_the_end(
        store: EventStore) -> None:
    fill(store)
    found = store.estimate_count(types=["nt_rare"], exact_up_to=20)
    assert (found.count, found.exact) == (30, False)  # 30 > 20: beyond the bound
    found = store.estimate_count(types=["nt_rare"], exact_up_to=30)
    assert (found.count, found.exact) == (30, True)
    found = store.estimate_count(after=300, types=["nt_rare"], exact_up_to=30)
    assert (found.count, found.exact) == (3, True)  # 308, 319, 330


def test_a_capped_scan_estimates_the_rare_type_from_its_density(
        store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(store)
    monkeypatch.setattr(estimates, "scan_cap", lambda exact_up_to: 110)
    found = store.estimate_count(types=["nt_rare"], exact_up_to=30)
    # 10 rare among the first 110 ids, over 330: about 30, and marked an estimate.
    assert not found.exact
    assert 27 <= found.count <= 33
    # A type that fills the bound within the cap is estimated as before; both together.
    both = store.estimate_count(types=["nt_rare", "nt_common"], exact_up_to=30)
    assert not both.exact and 300 <= both.count <= 360
    absent = store.estimate_count(types=["nt_absent"], exact_up_to=30)
    assert (absent.count, absent.exact) == (0, False)  # none among 110 of 330 ids


def test_the_cap_never_applies_to_a_stream_shorter_than_it(
        store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(store)
    monkeypatch.setattr(estimates, "scan_cap", lambda exact_up_to: 330)
    found = store.estimate_count(types=["nt_rare"], exact_up_to=30)
    assert (found.count, found.exact) == (30, True)
    absent = store.estimate_count(types=["nt_absent"], exact_up_to=30)
    assert (absent.count, absent.exact) == (0, True)


class TestSchema3Sqlite(EventStoreContract):
    """The contract on a store still at schema 3 (with the type index), opened by this
    code before ``esctl setup`` upgraded it: the contract's own ``setup()`` is skipped."""

    def make_store(self) -> EventStore:
        path = self.tmp_path / "events.db"
        if not path.exists():
            create_at_schema_3(path)
        store = open_store(f"sqlite:///{path}")
        store.setup = lambda: []  # type: ignore[method-assign]  # stay at schema 3
        return store

    def open_again(self) -> EventStore:
        return self.make_store()
