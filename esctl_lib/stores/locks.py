"""Processor locks: at most one live instance of each processor, per store.

A backend hands them out through :meth:`EventStore.processor_lock`:

- PostgreSQL: a session-level advisory lock on a dedicated connection
  (``esctl_lib.stores.postgres.lock``); it goes with the session when the process dies.
- SQLite: an OS file lock (``flock``) on ``<db>.locks/<name>.lock`` next to the database
  (``esctl_lib.stores.sqlite.lock``); the kernel drops it when the process dies.
- memory: a lock local to the process (``esctl_lib.stores.memory``), since a memory store
  cannot be shared between processes.

Every lock is held by the process that took it until :meth:`ProcessorLock.release` or its
exit; nothing about it crosses a fork.
"""

from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod


def describe_self() -> str:
    """How a holder describes itself: ``pid 123 on host``."""
    return f"pid {os.getpid()} on {socket.gethostname()}"


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
