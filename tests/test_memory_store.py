"""The memory store keeps what was appended, whatever callers do to the events they hold."""

from __future__ import annotations

import uuid

import pytest

from esctl_lib import DuplicateEventError, Event, InvalidEventError, open_store
from esctl_lib.stores.memory import LocalLock, MemoryStore


class MemTagged(Event, type_name="mem_tagged"):
    pass


def fresh() -> MemoryStore:
    store = open_store("memory://")
    assert isinstance(store, MemoryStore)
    store.setup()
    return store


def test_changing_a_nested_list_of_an_event_read_back_leaves_the_stored_event_alone() -> None:
    store = fresh()
    agg = str(uuid.uuid4())
    store.append([MemTagged(aggregate_id=agg, body={"tags": ["a"], "meta": {"k": [1]}})])
    read = store.read_aggregate(agg)[0]
    read.body["tags"].append("b")
    read.body["meta"]["k"].append(2)
    assert store.read_aggregate(agg)[0].body == {"tags": ["a"], "meta": {"k": [1]}}


def test_changing_the_appended_event_or_its_body_leaves_the_stored_event_alone() -> None:
    store = fresh()
    agg = str(uuid.uuid4())
    body = {"tags": ["a"]}
    stored = store.append([MemTagged(aggregate_id=agg, body=body, metadata={"m": [1]})])[0]
    body["tags"].append("from the caller's dict")
    stored.body["tags"].append("from the returned event")
    stored.metadata["m"].append(2)
    again = store.read_aggregate(agg)[0]
    assert again.body == {"tags": ["a"]}
    assert again.metadata == {"m": [1]}


def test_a_duplicate_uuid_is_named() -> None:
    store = fresh()
    taken = str(uuid.uuid4())
    store.append([MemTagged(aggregate_id=str(uuid.uuid4()), uuid=taken)])
    with pytest.raises(DuplicateEventError, match=taken):
        store.append([MemTagged(aggregate_id=str(uuid.uuid4()), uuid=taken)])


def test_a_nul_character_is_refused_before_anything_is_written() -> None:
    store = fresh()
    agg = str(uuid.uuid4())
    with pytest.raises(InvalidEventError, match=r"body\.items\[1\]"):
        store.append([MemTagged(aggregate_id=agg, body={"items": ["ok", "\x00"]})])
    assert store.count() == 0


def test_processor_locks_are_local_to_the_store_object() -> None:
    store, other_store = fresh(), fresh()
    lock = store.processor_lock("proc")
    assert isinstance(lock, LocalLock)
    assert lock.try_acquire()
    assert not store.processor_lock("proc").try_acquire()
    assert store.processor_lock("proc").holder() == "this process"
    assert other_store.processor_lock("proc").try_acquire()
    lock.release()
    assert store.processor_lock("proc").holder() is None


def test_an_untyped_event_with_a_newline_in_its_type_is_refused() -> None:
    store = fresh()
    with pytest.raises(InvalidEventError, match="invalid event type name"):
        store.append([Event(aggregate_id=str(uuid.uuid4()), type="fine\nforged line")])
    assert store.count() == 0
