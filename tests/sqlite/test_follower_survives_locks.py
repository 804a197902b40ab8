"""A SQLite follower rides through ``database is locked``: it retries from its position."""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from pathlib import Path

import pytest

from esctl_lib import Event
from esctl_lib.stores.sqlite import SqliteStore
from esctl_lib.testing import eventually


def events(n: int) -> list[Event]:
    return [Event(aggregate_id=str(uuid.uuid4()), type="lock_probe", body={"n": i})
            for i in range(n)]


def hold_exclusive_lock(path: Path) -> sqlite3.Connection:
    """A connection that keeps every other connection out until it is closed."""
    blocker = sqlite3.connect(path, isolation_level=None, timeout=30)
    blocker.execute("PRAGMA locking_mode = EXCLUSIVE")
    blocker.execute("BEGIN EXCLUSIVE")
    blocker.execute("INSERT INTO trackers (name, position) VALUES ('blocker', 0)")
    blocker.execute("COMMIT")  # in exclusive locking mode the lock stays after the commit
    return blocker


def test_a_follower_keeps_following_after_the_database_was_locked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="esctl.store")
    path = tmp_path / "events.db"
    writer = SqliteStore(path)
    writer.setup()
    first = [e.id for e in writer.append(events(1))] + [e.id for e in writer.append(events(1))]
    writer.close()
    follower_store = SqliteStore(path, busy_timeout=0.05, poll_interval=0.05)
    seen: list[int] = []
    failed: list[BaseException] = []
    stop = threading.Event()

    def follow() -> None:
        try:
            for page in follower_store.subscribe(0, stop=stop, idle_timeout=0.05):
                seen.extend(e.id or 0 for e in page.events)
        except BaseException as e:
            failed.append(e)

    # The follower starts while another connection holds the database: its reads fail
    # with "database is locked" until the lock goes.
    blocker = hold_exclusive_lock(path)
    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        eventually(lambda: not thread.is_alive() or retried(caplog), timeout=30,
                   what="a read that failed on the lock")
        blocker.close()
        eventually(lambda: failed or seen == first, timeout=30, what="the first events")
        writer = SqliteStore(path)
        later = [e.id for e in writer.append(events(1))]
        writer.close()
        eventually(lambda: failed or seen == first + later, timeout=30,
                   what="the follower carried on")
        assert failed == []
        assert retried(caplog)
        assert seen == first + later
    finally:
        stop.set()
        thread.join(timeout=10)
        follower_store.close()


def retried(caplog: pytest.LogCaptureFixture) -> bool:
    return any("store unavailable" in r.getMessage() for r in caplog.records)
