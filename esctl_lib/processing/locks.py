"""At most one live instance of each processor: the store's processor lock, and waiting
for it as a standby.

Each backend makes its own lock (:meth:`EventStore.processor_lock`; see
:mod:`esctl_lib.stores.locks`). This module adds what processing does with one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from esctl_lib.errors import ProcessorLockedError
from esctl_lib.stores.base import EventStore
from esctl_lib.stores.locks import ProcessorLock, describe_self
from esctl_lib.stores.sqlite.lock import FileLock, file_is_locked, lock_file_path

__all__ = [
    "FileLock",
    "ProcessorLock",
    "describe_self",
    "file_is_locked",
    "is_locked",
    "lock_file_path",
    "lock_holder",
    "processor_lock",
    "wait_for_lock",
]
log = logging.getLogger("esctl.runner")


def processor_lock(store: EventStore, name: str) -> ProcessorLock:
    """A lock for processor ``name`` on ``store``'s database, not yet acquired."""
    return store.processor_lock(name)


def wait_for_lock(
    lock: ProcessorLock,
    stop: threading.Event,
    *,
    poll: float = 1.0,
    timeout: float | None = None,
    while_waiting: Callable[[], object] | None = None,
    every: float = 5.0,
) -> bool:
    """Take ``lock``, retrying every ``poll`` seconds while another instance holds it.

    A quiet standby: one log line when it starts waiting, one when it takes over, and
    ``while_waiting()`` every ``every`` seconds meanwhile. Returns False when ``stop`` is
    set first. ``timeout`` (seconds; 0 = do not wait) raises ProcessorLockedError.
    """
    if lock.try_acquire():
        return True
    started, name = time.monotonic(), lock.name
    holder = lock.holder() or "another instance"
    if timeout is not None and timeout <= 0:
        raise ProcessorLockedError(
            f"processor {name!r} is running elsewhere ({holder}); stop that runner first",
            processor=name)
    log.info("%s is held by %s; waiting as standby", name, holder)
    noted = float("-inf")
    while not stop.is_set():
        if while_waiting is not None and time.monotonic() - noted >= every:
            while_waiting()
            noted = time.monotonic()
        if stop.wait(poll):
            break
        if lock.try_acquire():
            log.info("%s took over after %.0f s as standby", name, time.monotonic() - started)
            return True
        if timeout is not None and time.monotonic() - started >= timeout:
            raise ProcessorLockedError(
                f"processor {name!r} is still running elsewhere ({lock.holder()}) "
                f"after {timeout:g} s; stop that runner first", processor=name)
    return False


def is_locked(store: EventStore, name: str) -> bool:
    """Whether a live instance (a runner's child, a replay) holds processor ``name``."""
    return lock_holder(store, name) is not None


def lock_holder(store: EventStore, name: str) -> str | None:
    """Who holds processor ``name`` (``"pid 123 on host"``), or None when it is free."""
    lock = store.processor_lock(name)
    try:
        return lock.holder()
    finally:
        lock.close()
