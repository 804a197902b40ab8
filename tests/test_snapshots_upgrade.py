"""``esctl setup`` upgrades a store created at schema 1 to schema 2 (snapshots) in place;
until then the new code loads and saves as before, without snapshots."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from esctl_lib import Repository
from esctl_lib.stores import schema_files as schema_module
from esctl_lib.stores.base import EventStore
from tests.backends import SHARED_BACKENDS, Location, backend_params, fresh_location
from tests.test_snapshots import Ledger, fill, full_fold, state


@pytest.fixture(params=backend_params(SHARED_BACKENDS))
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Location]:
    with fresh_location(request.param, tmp_path) as where:
        yield where


def create_at_schema_1(location: Location, monkeypatch: pytest.MonkeyPatch) -> None:
    """Set a store up with only the first schema file, as an older esctl did."""
    real = schema_module.schema_files
    # The SQLite store imports the function at its top, the PostgreSQL store when setting
    # up: replace it where each looks for it.
    module = ("esctl_lib.stores.sqlite.store" if location.backend == "sqlite"
              else "esctl_lib.stores.schema_files")
    with monkeypatch.context() as patch:
        patch.setattr(f"{module}.schema_files", lambda backend: real(backend)[:1])
        store = location.open()
        try:
            assert store.setup()[-1] == "applied schema 001_init"
            assert store.schema_version() == 1
        finally:
            store.close()


def test_setup_upgrades_a_schema_1_store_in_place(
    location: Location, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    create_at_schema_1(location, monkeypatch)
    store: EventStore = location.open()
    try:
        repo = Repository(store)
        # Before the upgrade: no snapshots table, yet loads and saves work.
        with caplog.at_level(logging.WARNING, logger="esctl.repository"):
            old = fill(repo, Ledger, 25)
        assert "esctl setup" in caplog.text  # the skipped snapshot says how to get them
        assert store.snapshots() == []
        assert store.drop_snapshots() == 0
        assert state(repo.load(Ledger, old)) == state(full_fold(store, Ledger, old))

        applied = store.setup()  # and every later file of the backend (SQLite: 003)
        assert applied[0] == "applied schema 002_snapshots"
        latest = schema_module.latest_version(store.backend)
        assert latest >= 2 and store.schema_version() == latest
        assert store.setup() == [f"schema is up to date (version {latest})"]
        # The events are all there, and the next crossing writes a snapshot.
        assert store.aggregate_version(old) == 25
        ledger = repo.load(Ledger, old)
        for _ in range(5):
            ledger.deposit(1)
        repo.save(ledger)
        snap = store.load_snapshot(old, Ledger.snapshot_type(), 1)
        assert snap is not None and snap.version == 30
        assert state(repo.load(Ledger, old)) == state(full_fold(store, Ledger, old))
        assert [i.count for i in store.snapshots()] == [1]
    finally:
        store.close()
