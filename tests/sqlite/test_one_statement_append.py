"""One event appended at an expected version outside a transaction is one autocommit
statement on SQLite (``stores/sqlite/tx.py``, ``append_one``), and the writers' turn file
stays open between turns (released with ``LOCK_UN``)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from esctl_lib import ConcurrencyError, DuplicateEventError, Event, StoreError
from esctl_lib.stores.sqlite.store import SqliteStore


class Noted(Event, type_name="noted"):
    """Body: anything."""


def _statements(store: SqliteStore) -> list[str]:
    """The statements the store's connection runs from now on (not those SQLite runs
    inside one, traced as ``-- ...``: the schema cookie's pragma table)."""
    seen: list[str] = []

    def note(sql: str) -> None:
        if not sql.startswith("--"):
            seen.append(sql)

    store._conn().set_trace_callback(note)
    return seen


def test_a_single_event_at_its_expected_version_is_one_statement(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "events.db")
    store.setup()
    agg = str(uuid.uuid4())
    store.append([Noted(aggregate_id=agg, body={"n": 1})], expected_version=0)
    seen = _statements(store)
    stored = store.append([Noted(aggregate_id=agg, body={"n": 2})], expected_version=1)
    store._conn().set_trace_callback(None)
    assert len(seen) == 1 and seen[0].startswith("INSERT INTO events"), seen
    assert stored[0].id == 2 and stored[0].version == 2 and stored[0].body == {"n": 2}
    assert [(e.id, e.version, e.body) for e in store.read_aggregate(agg)] == [
        (1, 1, {"n": 1}), (2, 2, {"n": 2})]
    store.close()


def test_a_version_moved_by_another_writer_is_a_concurrency_error(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    mine, other = SqliteStore(path), SqliteStore(path)
    mine.setup()
    agg = str(uuid.uuid4())
    mine.append([Noted(aggregate_id=agg)], expected_version=0)
    other.append([Noted(aggregate_id=agg)], expected_version=1)
    with pytest.raises(ConcurrencyError) as info:
        mine.append([Noted(aggregate_id=agg)], expected_version=1)
    assert info.value.actual == 2
    with pytest.raises(ConcurrencyError):  # ahead of the aggregate: no gap is written
        mine.append([Noted(aggregate_id=agg)], expected_version=5)
    assert [e.version for e in other.read_aggregate(agg)] == [1, 2] and mine.count() == 2
    mine.close()
    other.close()


def test_a_stored_uuid_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "events.db")
    store.setup()
    agg = str(uuid.uuid4())
    first = store.append([Noted(aggregate_id=agg)], expected_version=0)[0]
    with pytest.raises(DuplicateEventError) as info:
        store.append([Noted(aggregate_id=str(uuid.uuid4()), uuid=first.uuid)],
                     expected_version=0)
    assert info.value.uuid == first.uuid and store.count() == 1
    store.close()


def test_inside_an_open_transaction_the_append_is_refused_as_before(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "events.db")
    store.setup()
    agg = str(uuid.uuid4())
    store.append([Noted(aggregate_id=agg)], expected_version=0)
    with store.transaction() as tx:
        tx.set_tracker("p", 1)
        with pytest.raises(StoreError, match="already open"):
            store.append([Noted(aggregate_id=agg)], expected_version=1)
    assert store.count() == 1 and store.get_tracker("p") == 1
    store.close()


_OTHER_WRITER = (
    "from esctl_lib.stores.sqlite.store import SqliteStore\n"
    "s = SqliteStore({path!r}, busy_timeout=0.3)\n"
    "try:\n"
    "    with s.transaction() as tx:\n"
    "        tx.set_tracker('q', 1)\n"
    "except Exception as e:\n"
    "    print(type(e).__name__)\n"
    "else:\n"
    "    print('wrote')\n"
)


def _other_writer(path: Path) -> str:
    done = subprocess.run([sys.executable, "-c", _OTHER_WRITER.format(path=str(path))],
                          capture_output=True, text=True, timeout=60, check=False)
    return done.stdout.strip() or done.stderr


def test_an_unlinked_turn_file_is_made_again_and_keeps_other_processes_out(
        tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    store = SqliteStore(path)
    store.setup()
    agg = str(uuid.uuid4())
    store.append([Noted(aggregate_id=agg)], expected_version=0)
    writer = Path(f"{path}-writer")
    writer.unlink()
    with store.transaction() as tx:  # opens the file again, and holds its turn
        tx.set_tracker("p", 1)
        assert writer.exists()
        assert _other_writer(path) == "StoreUnavailableError"
    assert _other_writer(path) == "wrote"
    store.close()


def test_a_child_forked_during_a_turn_does_not_keep_the_turn(tmp_path: Path) -> None:
    """The turn ends with LOCK_UN on the open file, so a forked child's copy of the
    descriptor (which would keep a close-released flock alive) does not hold it."""
    path = tmp_path / "events.db"
    store = SqliteStore(path)
    store.setup()
    read_end, write_end = os.pipe()
    with store.transaction() as tx:
        tx.set_tracker("p", 1)
        pid = os.fork()
        if pid == 0:  # the child: wait until told, touch nothing
            os.close(write_end)
            os.read(read_end, 1)
            os._exit(0)
    os.close(read_end)
    try:
        assert _other_writer(path) == "wrote"  # the child is alive and holds a copy
    finally:
        os.write(write_end, b"x")
        os.close(write_end)
        os.waitpid(pid, 0)
    store.close()


_KILLED_WRITER = (
    "import sys\n"
    "from esctl_lib import Event\n"
    "from esctl_lib.stores.sqlite.store import SqliteStore\n"
    "class Noted(Event, type_name='noted'):\n"
    "    pass\n"
    "s = SqliteStore({path!r})\n"
    "agg = {agg!r}\n"
    "v = s.aggregate_version(agg)\n"
    "while True:\n"
    "    e = s.append([Noted(aggregate_id=agg, body={{'v': v + 1}})], expected_version=v)[0]\n"
    "    v = e.version\n"
    "    sys.stdout.write(f'{{e.id}} {{e.version}}\\n')\n"
    "    sys.stdout.flush()\n"
)


def test_a_writer_killed_mid_append_leaves_whole_events_and_its_turn_free(
        tmp_path: Path) -> None:
    """kill -9 of a process appending one event at a time: every acknowledged append is
    stored, at most the one in flight besides, versions are contiguous, and the next writer
    is not kept waiting by the dead one's turn."""
    path = tmp_path / "events.db"
    store = SqliteStore(path, busy_timeout=5.0)
    store.setup()
    agg = str(uuid.uuid4())
    for round_ in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", _KILLED_WRITER.format(path=str(path), agg=agg)],
            stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        acked = [child.stdout.readline() for _ in range(50 + 37 * round_)]
        child.kill()  # SIGKILL, most likely inside an append
        child.wait(timeout=30)
        # what it acknowledged between the last line read and the kill is in the pipe
        # (each line one write, so whole); a piece without its newline is no line
        *more, _unfinished = child.stdout.read().split("\n")
        child.stdout.close()
        last_acked = int((acked + more)[-1].split()[1])
        versions = [e.version for e in store.read_aggregate(agg)]
        assert versions == list(range(1, len(versions) + 1))
        assert len(versions) in (last_acked, last_acked + 1), (last_acked, len(versions))
        assert [e.body["v"] for e in store.read_aggregate(agg)] == versions
        # the dead writer's turn is free (a turn still held would refuse this append)
        stored = store.append([Noted(aggregate_id=agg, body={"v": len(versions) + 1})],
                              expected_version=len(versions))
        assert stored[0].version == len(versions) + 1
    store.close()
