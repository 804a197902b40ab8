"""At most one live instance of each processor: a lock per processor name.

- PostgreSQL: a session-level advisory lock on a dedicated connection (see
  ``esctl_lib.stores.postgres_lock``); it goes away with the session when the process dies.
- SQLite: an OS file lock (``flock``) on ``<db>.locks/<name>.lock`` next to the database;
  the kernel drops it when the process dies.
- memory: a lock local to the process (a memory store cannot be shared between processes).

Every lock here is held by the process that took it until :meth:`ProcessorLock.release`
or its exit; nothing about it crosses a fork.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from esctl_lib.errors import ConfigError, ProcessorLockedError
from esctl_lib.stores.base import EventStore

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
log = logging.getLogger("esctl.runner")


class ProcessorLock(ABC):
    """The right to run one processor. Not reentrant; not shared between threads."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.held = False

    @abstractmethod
    def try_acquire(self) -> bool:
        """Take the lock if it is free; True when this instance now holds it."""

    @abstractmethod
    def release(self) -> None:
        """Give the lock up (a no-op when not held)."""

    def holder(self) -> str | None:
        """Who holds the lock (e.g. ``"pid 123 on web-1"``), when known; None when free."""
        return None

    def check(self) -> bool:
        """Whether the lock is still held: False once it is lost (e.g. its connection died)."""
        return self.held

    def close(self) -> None:
        """Release the lock and any resource it uses."""
        self.release()

    def __enter__(self) -> ProcessorLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


def describe_self() -> str:
    """How a holder describes itself: ``pid 123 on host``."""
    return f"pid {os.getpid()} on {socket.gethostname()}"


class FileLock(ProcessorLock):
    """An exclusive ``flock`` on a file; the kernel releases it when the process dies."""

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name)
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        import fcntl

        if self.held:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, describe_self().encode(), 0)
        self._fd = fd
        self.held = True
        return True

    def release(self) -> None:
        import fcntl

        fd, self._fd = self._fd, None
        self.held = False
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def holder(self) -> str | None:
        if self.held:
            return describe_self()
        if not file_is_locked(self.path):
            return None
        try:
            text = self.path.read_text(errors="replace").strip()
        except OSError:
            text = ""
        return text or "another process"


def file_is_locked(path: Path) -> bool:
    """Whether some open file description holds an exclusive ``flock`` on ``path``."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock we may have taken
    return False


_local_held: weakref.WeakKeyDictionary[EventStore, set[str]] = weakref.WeakKeyDictionary()
_local_guard = threading.Lock()


class LocalLock(ProcessorLock):
    """A lock local to this process, per store object (for ``memory://`` stores)."""

    def __init__(self, store: EventStore, name: str) -> None:
        super().__init__(name)
        self._store = weakref.ref(store)

    def try_acquire(self) -> bool:
        if self.held:
            return True
        store = self._store()
        if store is None:
            return False
        with _local_guard:
            names = _local_held.setdefault(store, set())
            if self.name in names:
                return False
            names.add(self.name)
        self.held = True
        return True

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        store = self._store()
        if store is not None:
            with _local_guard:
                _local_held.get(store, set()).discard(self.name)

    def holder(self) -> str | None:
        if self.held:
            return describe_self()
        store = self._store()
        held = store is not None and self.name in _local_held.get(store, set())
        return "this process" if held else None


def lock_file_path(db_path: Path, name: str) -> Path:
    """``<db>.locks/<name>.lock``; names that are not file-safe are hashed."""
    if _SAFE_NAME.match(name) and not name.startswith("."):
        file_name = name
    else:
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        file_name = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:60] + "-" + digest
    return db_path.with_name(db_path.name + ".locks") / f"{file_name}.lock"


def processor_lock(store: EventStore, name: str) -> ProcessorLock:
    """A lock for processor ``name`` on ``store``'s database, not yet acquired."""
    if store.dialect == "sqlite":
        db_path: Any = getattr(store, "path", None)
        if db_path is None:
            raise ConfigError(f"cannot lock processor {name!r}: the SQLite store has no path")
        return FileLock(name, lock_file_path(Path(db_path).resolve(), name))
    if store.dialect == "postgresql":
        from esctl_lib.stores.postgres_lock import PostgresAdvisoryLock

        return PostgresAdvisoryLock.for_store(store, name)
    if store.dialect == "memory":
        return LocalLock(store, name)
    raise ConfigError(f"no processor lock for a {store.dialect!r} store")


def is_locked(store: EventStore, name: str) -> bool:
    """Whether a live instance (a runner's child, a replay) holds processor ``name``."""
    lock = processor_lock(store, name)
    try:
        return lock.holder() is not None
    finally:
        lock.close()


def lock_holder(store: EventStore, name: str) -> str | None:
    """Who holds processor ``name`` (``"pid 123 on host"``), or None when it is free."""
    lock = processor_lock(store, name)
    try:
        return lock.holder()
    finally:
        lock.close()
