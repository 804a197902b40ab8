"""Processor locks: at most one live holder per processor, released when the holder dies."""

from __future__ import annotations

import signal

from esctl_lib.processing.locks import is_locked, lock_file_path, lock_holder, processor_lock
from esctl_lib.testing import eventually
from tests.backends import StoreSpec
from tests.processing.runner_apps.support import hold_lock, shared_backends

pytestmark = shared_backends


def test_a_free_lock_is_taken(store_spec: StoreSpec) -> None:
    with processor_lock(store_spec.open(), "p") as lock:
        assert lock.try_acquire()


def test_a_second_instance_cannot_take_a_held_lock(store_spec: StoreSpec) -> None:
    store = store_spec.open()
    with processor_lock(store, "p") as first, processor_lock(store_spec.open(), "p") as second:
        assert first.try_acquire()
        assert not second.try_acquire()


def test_a_released_lock_can_be_taken_again(store_spec: StoreSpec) -> None:
    with processor_lock(store_spec.open(), "p") as first, \
            processor_lock(store_spec.open(), "p") as second:
        first.try_acquire()
        first.release()
        assert second.try_acquire()


def test_locks_of_different_processors_are_independent(store_spec: StoreSpec) -> None:
    store = store_spec.open()
    with processor_lock(store, "a") as a, processor_lock(store, "b") as b:
        assert a.try_acquire()
        assert b.try_acquire()


def test_is_locked_sees_a_lock_held_by_another_process(store_spec: StoreSpec) -> None:
    holder = hold_lock(store_spec, "p")
    try:
        assert is_locked(store_spec.open(), "p")
    finally:
        holder.kill()
        holder.wait()


def test_is_locked_is_false_for_a_free_processor(store_spec: StoreSpec) -> None:
    assert not is_locked(store_spec.open(), "p")


def test_the_holder_names_the_process_that_holds_the_lock(store_spec: StoreSpec) -> None:
    holder = hold_lock(store_spec, "p")
    try:
        assert f"pid {holder.pid}" in (lock_holder(store_spec.open(), "p") or "")
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_is_released_when_its_holder_is_killed(store_spec: StoreSpec) -> None:
    holder = hold_lock(store_spec, "p")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with processor_lock(store_spec.open(), "p") as lock:
        assert lock.try_acquire() or eventually(lock.try_acquire, timeout=5)


def test_a_held_lock_checks_as_still_held(store_spec: StoreSpec) -> None:
    with processor_lock(store_spec.open(), "p") as lock:
        lock.try_acquire()
        assert lock.check()


def test_an_unsafe_processor_name_gets_a_hashed_lock_file(tmp_path: object,
                                                          store_spec: StoreSpec) -> None:
    from pathlib import Path

    path = lock_file_path(Path("/data/events.db"), "../evil name")
    assert path.parent == Path("/data/events.db.locks")
    assert "/" not in path.name and not path.name.startswith(".")
