"""Files the library creates are readable by their owner only (files 0600, folders 0700),
under the common umask 0o022; files that already exist keep their mode."""

from __future__ import annotations

import logging
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from esctl_lib import Event, export_events, open_store
from esctl_lib.app import configure_logging, reset_logging
from esctl_lib.config import load_settings

AGG = "7a1c1f5e-7d2a-4e43-9b0e-1a2b3c4d5e6f"


@pytest.fixture(autouse=True)
def common_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_its_wal_and_shm_and_its_folder_are_private(tmp_path: Path) -> None:
    db = tmp_path / "data" / "events.db"
    store = open_store(f"sqlite:///{db}")
    try:
        store.setup()
        store.append([Event(type="perm_test", aggregate_id=AGG)])
        wal, shm = db.with_name("events.db-wal"), db.with_name("events.db-shm")
        assert wal.exists() and shm.exists()  # the connection is still open
        assert (mode(db), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
        assert mode(db.parent) == 0o700
    finally:
        store.close()


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    db.touch(mode=0o640)
    os.chmod(db, 0o640)
    store = open_store(f"sqlite:///{db}")
    try:
        store.setup()
    finally:
        store.close()
    assert mode(db) == 0o640


def test_processor_lock_files_and_their_folder_are_private(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    store = open_store(f"sqlite:///{db}")
    store.setup()
    lock = store.processor_lock("items")
    try:
        assert lock.try_acquire()
        folder = tmp_path / "events.db.locks"
        assert mode(folder) == 0o700
        assert mode(folder / "items.lock") == 0o600
    finally:
        lock.close()
        store.close()


def test_the_log_file_and_its_folder_are_private(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "logs" / "esctl.log"
    monkeypatch.chdir(tmp_path)
    settings = load_settings(overrides={"logging": {"file": str(log)}}, cwd=tmp_path)
    configure_logging(settings)
    try:
        logging.getLogger("esctl_lib.test").warning("hello")
    finally:
        reset_logging()
    assert "hello" in log.read_text()
    assert (mode(log), mode(log.parent)) == (0o600, 0o700)


def test_an_export_file_is_private_unless_it_replaces_a_file(tmp_path: Path) -> None:
    store = open_store("memory://")
    store.setup()
    store.append([Event(type="perm_test", aggregate_id=AGG, uuid=uuid.uuid4())])
    new = tmp_path / "new.jsonl"
    export_events(store, new)
    assert mode(new) == 0o600
    shared = tmp_path / "shared.jsonl"
    shared.write_text("")
    os.chmod(shared, 0o644)
    export_events(store, shared)
    assert mode(shared) == 0o644
    assert shared.read_text().count("\n") == 1
