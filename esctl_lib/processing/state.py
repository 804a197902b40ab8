"""Each processor's live state in the ``processor_state`` table, for ``esctl status``.

One row per processor name: its state, the pid and host of the instance running it, the
last heartbeat, the last error and its position. A row whose heartbeat is older than
:data:`STALE_AFTER` seconds belongs to an instance that died without saying so: it reads
as "stopped (stale)".
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from esctl_lib.processing.tables import Tables
from esctl_lib.stores.base import EventStore

STATES = ("starting", "running", "idle", "failing", "parked", "standby", "stopped")
#: Seconds between heartbeats of a live instance.
HEARTBEAT_INTERVAL = 5.0
#: A row whose heartbeat is older than this reads as stale (3 heartbeats missed).
STALE_AFTER = 3 * HEARTBEAT_INTERVAL
_TABLE = "processor_state"
_MAX_ERROR = 2000

log = logging.getLogger("esctl.runner")


@dataclass(frozen=True, slots=True)
class ProcessorState:
    """One processor's recorded state (times are Unix timestamps)."""

    name: str
    state: str
    pid: int | None = None
    host: str | None = None
    heartbeat_at: float | None = None
    last_error: str | None = None
    position: int | None = None
    updated_at: float | None = None

    def is_stale(self, now: float | None = None, *, stale_after: float = STALE_AFTER) -> bool:
        """True when the row claims a live state but its heartbeat stopped long ago."""
        if self.state == "stopped":
            return False
        seen = self.heartbeat_at if self.heartbeat_at is not None else self.updated_at
        if seen is None:
            return True
        return (time.time() if now is None else now) - seen > stale_after

    def display_state(self, now: float | None = None) -> str:
        """The state to show: ``"stopped (stale)"`` for a dead instance's row."""
        return "stopped (stale)" if self.is_stale(now) else self.state


def _check_state(state: str) -> None:
    if state not in STATES:
        raise ValueError(f"unknown processor state {state!r}: use one of {', '.join(STATES)}")


def _clip(error: str | None) -> str | None:
    return None if error is None else error[:_MAX_ERROR]


def record_state(
    store: EventStore,
    name: str,
    state: str,
    *,
    pid: int | None = None,
    host: str | None = None,
    position: int | None = None,
    error: str | None = None,
    clear_error: bool = False,
) -> None:
    """Write a processor's state (and heartbeat). Fields left None keep their stored value,
    except that a new instance (``pid`` given) starts without the previous one's pid/host."""
    _check_state(state)
    now = time.time()
    values: dict[str, Any] = {"name": name, "state": state, "heartbeat_at": now,
                              "updated_at": now}
    if pid is not None:
        values.update(pid=pid, host=host or socket.gethostname())
    if position is not None:
        values["position"] = position
    if error is not None or clear_error:
        values["last_error"] = _clip(error)
    with store.transaction() as tx:
        Tables(tx).upsert(_TABLE, values, key=("name",))


def heartbeat(store: EventStore, name: str, *, position: int | None = None,
              pid: int | None = None) -> None:
    """Refresh a processor's heartbeat (and position), leaving its state as it is.

    With ``pid``, only the row of that instance is touched, so a late heartbeat from an
    instance that lost its lock cannot overwrite its successor's row.
    """
    now = time.time()
    values: dict[str, Any] = {"heartbeat_at": now}
    if position is not None:
        values["position"] = position
    where: dict[str, Any] = {"name": name}
    if pid is not None:
        where.update(pid=pid, host=socket.gethostname())
    with store.transaction() as tx:
        Tables(tx).update(_TABLE, values, where=where)


def record_standby(store: EventStore, name: str, *, pid: int, host: str | None = None) -> bool:
    """Record that this instance waits as a standby, unless the row shows a live instance
    (whose row it would hide). Returns True when it wrote the row."""
    now = time.time()
    with store.transaction() as raw:
        tx = Tables(raw)
        current = _read(tx, name)
        if current is not None and current.pid != pid and not current.is_stale(now) and (
            current.state != "stopped"
        ):
            return False
        tx.upsert(_TABLE, {"name": name, "state": "standby", "pid": pid,
                           "host": host or socket.gethostname(), "heartbeat_at": now,
                           "updated_at": now}, key=("name",))
    return True


def release_state(store: EventStore, name: str, *, pid: int) -> None:
    """Mark the row stopped if this instance (``pid`` on this host) still owns it."""
    now = time.time()
    with store.transaction() as tx:
        Tables(tx).update(_TABLE, {"state": "stopped", "heartbeat_at": now, "updated_at": now},
                  where={"name": name, "pid": pid, "host": socket.gethostname()})


def _row(row: dict[str, Any]) -> ProcessorState:
    def num(v: Any, kind: Callable[[Any], Any]) -> Any:
        return None if v is None else kind(v)

    return ProcessorState(
        name=str(row["name"]), state=str(row["state"]), pid=num(row["pid"], int),
        host=row["host"], heartbeat_at=num(row["heartbeat_at"], float),
        last_error=row["last_error"], position=num(row["position"], int),
        updated_at=num(row["updated_at"], float),
    )


def _read(tx: Tables, name: str) -> ProcessorState | None:
    rows = tx.select(_TABLE, where={"name": name})
    return _row(rows[0]) if rows else None


def read_states(store: EventStore) -> list[ProcessorState]:
    """Every recorded processor state, by name."""
    with store.transaction() as tx:
        return [_row(r) for r in Tables(tx).select(_TABLE, order_by=("name",))]


def read_state(store: EventStore, name: str) -> ProcessorState | None:
    """One processor's recorded state, or None when it never ran."""
    with store.transaction() as tx:
        return _read(Tables(tx), name)


class StateRecorder:
    """Records one running instance's state from a background thread.

    :meth:`update` (the worker's ``on_state`` callback) only notes the new state in memory,
    so the worker never waits on, or nests a transaction into, a state write. The thread
    writes changes at once and a heartbeat every ``interval`` seconds. It shares ``store``
    with the worker: stores give each thread its own connection (SQLite) or take one from
    a pool per transaction (PostgreSQL). ``check`` runs before each heartbeat; when it
    returns False the recorder calls ``on_lost`` once.
    """

    def __init__(
        self,
        store: EventStore,
        name: str,
        *,
        interval: float = HEARTBEAT_INTERVAL,
        check: Callable[[], bool] | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self._store = store
        self._interval = interval
        self._check = check
        self._on_lost = on_lost
        self._cond = threading.Condition()
        self._pending: tuple[str, str | None] | None = None
        self._noted: tuple[str, str | None] | None = None
        self._position: int | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None

    def update(self, state: str, position: int | None, error: str | None = None) -> None:
        """Note a new state; written by the thread within moments."""
        _check_state(state)
        with self._cond:
            if position is not None:
                self._position = position
            if self._noted != (state, error):
                self._noted = self._pending = (state, error)
                self._cond.notify()

    def start(self, state: str = "starting", position: int | None = None) -> None:
        """Write the first row synchronously, then start the heartbeat thread."""
        record_state(self._store, self.name, state, pid=self.pid, host=self.host,
                     position=position, clear_error=True)
        self._position = position
        self._noted = (state, None)
        self._thread = threading.Thread(target=self._loop, name=f"esctl-state-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self, state: str = "stopped", error: str | None = None) -> None:
        """Stop the thread and write the final state synchronously."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=30)
        record_state(self._store, self.name, state, pid=self.pid, host=self.host,
                     position=self._position, error=error)

    def _loop(self) -> None:
        while self._step(self._store):
            pass

    def _step(self, store: EventStore) -> bool:
        with self._cond:
            if self._pending is None and not self._stopping:
                self._cond.wait(self._interval)
            if self._stopping:
                return False
            pending, self._pending = self._pending, None
            position = self._position
        try:
            if self._check is not None and not self._check():
                if self._on_lost is not None:
                    self._on_lost()
                return False
            if pending is not None:
                record_state(store, self.name, pending[0], pid=self.pid, host=self.host,
                             position=position, error=pending[1])
            else:
                heartbeat(store, self.name, position=position, pid=self.pid)
        except Exception as e:  # a failed state write must not stop the processor
            log.warning("%s: could not record state: %s", self.name, e)
        return True
