"""SQLite writers sharing a database take turns before ``BEGIN IMMEDIATE``
(``stores/sqlite/tx.py``): shared-read threads of one runner child, and the children."""

from __future__ import annotations

import stat
import subprocess
import sys
import threading
from pathlib import Path

from esctl_lib import StoreUnavailableError
from esctl_lib.stores.sqlite.store import SqliteStore


def test_the_turn_file_beside_the_database_is_private(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "events.db")
    store.setup()
    with store.transaction() as tx:
        tx.set_tracker("p", 1)
    store.close()
    writer = tmp_path / "events.db-writer"
    assert stat.S_IMODE(writer.stat().st_mode) == 0o600


def test_a_thread_waits_for_another_threads_write_then_sees_it(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    first, second = SqliteStore(path), SqliteStore(path)
    first.setup()
    opened, done = threading.Event(), threading.Event()
    seen: list[int] = []

    def later() -> None:
        opened.wait()
        with second.transaction() as tx:  # waits for the first's commit
            seen.append(tx.get_tracker("p"))
            tx.set_tracker("p", 2)
        done.set()

    thread = threading.Thread(target=later)
    thread.start()
    with first.transaction() as tx:
        tx.set_tracker("p", 1)
        opened.set()
        assert not done.wait(0.2)  # (the other writer cannot finish meanwhile)
    thread.join()
    assert seen == [1] and first.get_tracker("p") == 2
    first.close()
    second.close()


def test_a_writer_kept_waiting_past_busy_timeout_is_told_the_store_is_busy(
        tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    holder, waiter = SqliteStore(path), SqliteStore(path, busy_timeout=0.2)
    holder.setup()
    with holder.transaction() as tx:
        tx.set_tracker("p", 1)
        failed: list[BaseException] = []

        def attempt() -> None:
            try:
                with waiter.transaction():
                    pass
            except StoreUnavailableError as e:
                failed.append(e)

        thread = threading.Thread(target=attempt)
        thread.start()
        thread.join()
    assert len(failed) == 1 and "busy" in str(failed[0])
    holder.close()
    waiter.close()


def test_a_writer_in_another_process_waits_its_turn_too(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    store = SqliteStore(path)
    store.setup()
    code = (
        "import sys\n"
        "from esctl_lib.stores.sqlite.store import SqliteStore\n"
        f"s = SqliteStore({str(path)!r}, busy_timeout=0.3)\n"
        "try:\n"
        "    with s.transaction() as tx:\n"
        "        tx.set_tracker('q', 1)\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
        "else:\n"
        "    print('wrote')\n"
    )
    with store.transaction() as tx:
        tx.set_tracker("p", 1)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=60, check=False)
    assert done.stdout.startswith("StoreUnavailableError"), (done.stdout, done.stderr)
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60, check=False)
    assert again.stdout == "wrote\n", again.stderr
    store.close()
