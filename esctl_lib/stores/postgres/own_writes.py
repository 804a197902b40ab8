"""Read your own writes: the newest event this process appended, per database and schema.

Every store object of a process that points at one (url, schema) shares one
:class:`OwnWrites`, handed out by :meth:`OwnWritesRegistry.for_database`, so a read by any
of them waits briefly for an append made through another. A registry belongs to one
process: after a fork it hands out fresh objects (the parent's appends are not the
child's to wait for).
"""

from __future__ import annotations

import os
import threading


class OwnWrites:
    """The newest event id appended by this process that may not be readable yet (0: none)."""

    __slots__ = ("newest",)

    def __init__(self) -> None:
        self.newest = 0

    def note(self, event_id: int) -> None:
        """An append committed up to ``event_id``."""
        if event_id > self.newest:
            self.newest = event_id

    def forget(self, event_id: int) -> None:
        """``event_id`` is readable (or waited for long enough): stop waiting for it, unless
        a newer append came meanwhile."""
        if self.newest <= event_id:
            self.newest = 0


class OwnWritesRegistry:
    """Hands out the one :class:`OwnWrites` of each (url, schema) in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._by_database: dict[tuple[str, str], OwnWrites] = {}

    def for_database(self, url: str, schema: str) -> OwnWrites:
        """The shared record for ``schema`` of the database at ``url``."""
        with self._lock:
            if self._pid != os.getpid():  # a forked child starts with nothing to wait for
                self._pid = os.getpid()
                self._by_database = {}
            found = self._by_database.get((url, schema))
            if found is None:
                found = self._by_database[(url, schema)] = OwnWrites()
            return found


#: The registry the stores of this process share.
own_writes_registry = OwnWritesRegistry()
