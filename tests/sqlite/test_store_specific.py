"""SQLite-only behaviour: duplicate uuids named, bodies refused before any write, file locks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from esctl_lib import DuplicateEventError, Event, InvalidEventError, open_store
from esctl_lib.stores.sqlite import FileLock, SqliteStore, lock_file_path


class SqlNoted(Event, type_name="sqlite_noted"):
    pass


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SqliteStore]:
    store = open_store("sqlite:///events.db", base_dir=tmp_path)
    assert isinstance(store, SqliteStore)
    store.setup()
    yield store
    store.close()


def noted(agg: str, n: int, *, uuid_: str | None = None) -> SqlNoted:
    return SqlNoted(aggregate_id=agg, body={"n": n}, uuid=uuid_)


def test_a_duplicate_uuid_is_named_in_the_error(sqlite: SqliteStore) -> None:
    taken = str(uuid.uuid4())
    sqlite.append([noted(str(uuid.uuid4()), 1, uuid_=taken)])
    with pytest.raises(DuplicateEventError, match=taken) as caught:
        sqlite.append([noted(str(uuid.uuid4()), 2, uuid_=taken)])
    assert caught.value.uuid == taken


def test_a_duplicate_uuid_late_in_a_batch_is_named_and_nothing_of_the_batch_stays(
    sqlite: SqliteStore,
) -> None:
    taken = str(uuid.uuid4())
    sqlite.append([noted(str(uuid.uuid4()), 0, uuid_=taken)])
    agg = str(uuid.uuid4())
    batch = [noted(agg, 1), noted(agg, 2), noted(agg, 3, uuid_=taken)]
    with sqlite.transaction() as tx:
        with pytest.raises(DuplicateEventError) as caught:
            tx.append(batch)
        tx.append([noted(str(uuid.uuid4()), 9)])  # the caller's transaction goes on
    assert caught.value.uuid == taken
    assert sqlite.read_aggregate(agg) == []
    assert sqlite.count() == 2


def test_one_uuid_twice_in_one_append_is_named(sqlite: SqliteStore) -> None:
    agg, twice = str(uuid.uuid4()), str(uuid.uuid4())
    with pytest.raises(DuplicateEventError, match=twice):
        sqlite.append([noted(agg, 1, uuid_=twice), noted(agg, 2, uuid_=twice)])
    assert sqlite.count() == 0


def test_a_nul_character_is_refused_naming_the_field_before_anything_is_written(
    sqlite: SqliteStore,
) -> None:
    agg = str(uuid.uuid4())
    bad = SqlNoted(aggregate_id=agg, body={"title": "a\x00b"})
    with pytest.raises(InvalidEventError, match=r"body\.title"):
        sqlite.append([noted(agg, 1), bad])
    assert sqlite.count() == 0


def test_metadata_follows_the_same_rule(sqlite: SqliteStore) -> None:
    bad = SqlNoted(aggregate_id=str(uuid.uuid4()), body={}, metadata={"who": "\ud800"})
    with pytest.raises(InvalidEventError, match=r"metadata\.who"):
        sqlite.append([bad])
    assert sqlite.count() == 0


def test_the_processor_lock_is_a_file_lock_next_to_the_database(sqlite: SqliteStore) -> None:
    lock = sqlite.processor_lock("my_proc")
    try:
        assert isinstance(lock, FileLock)
        assert lock.path == lock_file_path(sqlite.path.resolve(), "my_proc")
        assert lock.path.parent.name == "events.db.locks"
        assert lock.try_acquire()
        other = sqlite.processor_lock("my_proc")
        assert not other.try_acquire()
        assert other.holder() is not None
        other.close()
    finally:
        lock.close()
    assert sqlite.processor_lock("my_proc").holder() is None


def test_reads_are_local_and_there_is_no_reader_horizon(sqlite: SqliteStore) -> None:
    assert sqlite.backend == "sqlite"
    assert sqlite.remote_reads is False
    assert sqlite.reader_horizon() is None


def test_an_untyped_event_with_a_control_character_in_its_type_is_refused(
    sqlite: SqliteStore,
) -> None:
    bad = Event(aggregate_id=str(uuid.uuid4()), type="legacy\x1b[2Jthing")
    with pytest.raises(InvalidEventError, match="invalid event type name"):
        sqlite.append([bad])
    assert sqlite.count() == 0
