"""Each processor's live state in the ``processor_state`` table, for ``esctl status``.

One row per processor name: its state, the pid and host of the instance running it, the
last heartbeat, the last error (with the traceback of a failure in user code) and its
position.

Health never turns good by itself. An error stays in the row until the processor processes
successfully again (it goes idle, moves past the position where it failed, or a run ends
without failing): neither a new instance starting nor time passing clears it. A row that
claims a live state but whose heartbeat is older than :data:`STALE_AFTER` seconds belongs
to an instance that died without saying so: it reads as ``"running (stale)"`` (say), and
the next instance to start records that death as its last error. A child that dies before
it could record anything is recorded by the runner with :func:`record_exit`.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
import traceback as tb
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from esctl_lib.processing.tables import Tables
from esctl_lib.stores.base import EventStore

STATES = ("starting", "running", "idle", "failing", "parked", "standby", "stopped", "crashed")
#: States of an instance that claims to be alive (and so must keep heartbeating).
LIVE_STATES = ("starting", "running", "idle", "failing", "parked", "standby")
#: Seconds between heartbeats of a live instance.
HEARTBEAT_INTERVAL = 5.0
#: A row whose heartbeat is older than this reads as stale (3 heartbeats missed).
STALE_AFTER = 3 * HEARTBEAT_INTERVAL
_TABLE = "processor_state"
_MAX_ERROR = 2000
_MAX_TRACEBACK = 16000
#: Separates the error from its traceback in the ``last_error`` column.
_TRACEBACK_MARK = "\n--- traceback ---\n"

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
    #: The traceback of the last error, when it was a failure in user code.
    traceback: str | None = None
    #: A rebuild in progress or failed, when the row records one (None otherwise).
    rebuild: Any = None

    def heartbeat_age(self, now: float | None = None) -> float | None:
        """Seconds since the last heartbeat (or update), None when there was none."""
        seen = self.heartbeat_at if self.heartbeat_at is not None else self.updated_at
        return None if seen is None else max(0.0, (time.time() if now is None else now) - seen)

    def is_stale(self, now: float | None = None, *, stale_after: float = STALE_AFTER) -> bool:
        """True when the row claims a live state but its heartbeat stopped long ago."""
        if self.state not in LIVE_STATES:
            return False
        age = self.heartbeat_age(now)
        return age is None or age > stale_after

    def display_state(self, now: float | None = None, *, stale_after: float = STALE_AFTER
                      ) -> str:
        """The state to show: ``"running (stale)"`` for a dead instance's live state."""
        stale = self.is_stale(now, stale_after=stale_after)
        return f"{self.state} (stale)" if stale else self.state

    def problem(self, now: float | None = None, *, stale_after: float = STALE_AFTER
                ) -> str | None:
        """Why this processor is unhealthy (one line), or None when it is healthy."""
        error = _summary(self.last_error)
        where = f" (pid {self.pid} on {self.host})" if self.pid is not None else ""
        age = self.heartbeat_age(now)
        silent = f"no heartbeat for {age:.0f} s" if age is not None else "no heartbeat ever"
        stale = self.is_stale(now, stale_after=stale_after)
        if self.state == "crashed":
            return f"crashed: {error or 'exited abnormally'}"
        if self.state == "failing":
            return (f"failing{where}: {error or 'no error recorded'}"
                    + (f" ({silent})" if stale else ""))
        if stale:
            text = f"{silent} while {self.state}{where}"
            return f"{text}; last error: {error}" if error else text
        if error:
            return f"{self.state} with an error not cleared by a successful run: {error}"
        return None


def _check_state(state: str) -> None:
    if state not in STATES:
        raise ValueError(f"unknown processor state {state!r}: use one of {', '.join(STATES)}")


def _clip(error: str | None) -> str | None:
    return None if error is None else error[:_MAX_ERROR]


def _summary(error: str | None) -> str | None:
    """The first non-blank line of an error."""
    if not error:
        return None
    return next((part.strip() for part in error.splitlines() if part.strip()), None)


def _with_traceback(error: str, exc: BaseException | None) -> str:
    """``error`` followed by the traceback of ``exc`` (its chained causes included)."""
    if exc is None or exc.__traceback__ is None:
        return _clip(error) or ""
    text = "".join(tb.format_exception(exc)).rstrip()
    if len(text) > _MAX_TRACEBACK:  # the innermost frames matter most: keep the tail
        text = "...\n" + text[-_MAX_TRACEBACK:]
    return (_clip(error) or "") + _TRACEBACK_MARK + text


def _handled_exception(error: str | None) -> BaseException | None:
    """The exception being handled now, when ``error`` is its text (so a state recorded
    from an ``except`` block, as the worker's and the runner's are, keeps its traceback)."""
    exc = sys.exception()
    if exc is None or not error or not str(exc) or str(exc) not in error:
        return None
    return exc


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
    exc: BaseException | None = None,
) -> None:
    """Write a processor's state (and heartbeat). Fields left None keep their stored value,
    except that a new instance (``pid`` given) starts without the previous one's pid/host.

    ``error`` is stored with the traceback of ``exc`` (default: the exception being handled
    when called from an ``except`` block, if ``error`` is its text); ``clear_error`` removes
    the stored error (call it only once the processor processed successfully).
    """
    _check_state(state)
    if error is not None and _TRACEBACK_MARK not in error:
        error = _with_traceback(error, exc if exc is not None else _handled_exception(error))
    now = time.time()
    values: dict[str, Any] = {"name": name, "state": state, "heartbeat_at": now,
                              "updated_at": now}
    if pid is not None:
        values.update(pid=pid, host=host or socket.gethostname())
    if position is not None:
        values["position"] = position
    if error is not None or clear_error:
        values["last_error"] = error
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


def record_exit(store: EventStore, name: str, *, pid: int, exit_code: int | None,
                description: str, host: str | None = None) -> bool:
    """The runner's record of a child that exited abnormally (``exit_code`` not 0), for when
    the child could not record its own end (it crashed, was killed, or its disk was full).

    Writes state ``"crashed"`` with the exit as its last error, unless the row shows that
    child's own recorded failure (kept: it says more) or another instance that is alive.
    Returns True when it wrote the row.
    """
    if exit_code == 0:
        return False
    host = host or socket.gethostname()
    now = time.time()
    with store.transaction() as raw:
        tx = Tables(raw)
        current = _read(tx, name)
        if current is not None:
            own = (current.pid, current.host) == (pid, host)
            if own and current.state == "failing" and current.last_error:
                return False
            if not own and current.state in LIVE_STATES and not current.is_stale(now):
                return False
        text = f"process {pid} on {host} exited with {description}"
        if current is not None and (current.pid, current.host) != (pid, host):
            text += " before it recorded its state"
        if current is not None and current.last_error and current.state != "crashed":
            text += f" (previous error: {_summary(current.last_error)})"
        tx.upsert(_TABLE, {"name": name, "state": "crashed", "pid": pid, "host": host,
                           "last_error": _clip(text), "updated_at": now}, key=("name",))
    return True


def _row(row: dict[str, Any]) -> ProcessorState:
    def num(v: Any, kind: Callable[[Any], Any]) -> Any:
        return None if v is None else kind(v)

    error, _, trace = (row["last_error"] or "").partition(_TRACEBACK_MARK)
    return ProcessorState(
        name=str(row["name"]), state=str(row["state"]), pid=num(row["pid"], int),
        host=row["host"], heartbeat_at=num(row["heartbeat_at"], float),
        last_error=error if row["last_error"] is not None else None,
        position=num(row["position"], int),
        updated_at=num(row["updated_at"], float), traceback=trace or None,
        rebuild=row.get("rebuild"),
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

    The stored error is cleared only once the processor processed successfully: it went
    idle, moved past the position where it last failed (or started), or the worker stopped
    without an error. A failure's traceback is noted when :meth:`update` is called from the
    ``except`` block handling it (as the worker does).
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
        #: (state, error with traceback, clear the stored error)
        self._pending: tuple[str, str | None, bool] | None = None
        self._noted: tuple[str, str | None] | None = None
        self._position: int | None = None
        #: The position of the last failure (or the start): moving past it is a success.
        self._failed_at: int | None = None
        self._failed = True  # until it succeeds, a predecessor's error stays
        self._has_error = True  # as far as this instance knows, the row has an error
        self._stopping = False
        self._thread: threading.Thread | None = None

    def update(self, state: str, position: int | None, error: str | None = None) -> None:
        """Note a new state; written by the thread within moments."""
        _check_state(state)
        stored = None if error is None else _with_traceback(error, _handled_exception(error))
        with self._cond:
            if position is not None:
                self._position = position
            if state == "failing":
                self._failed, self._failed_at = True, self._position
            elif self._failed and self._succeeded(state, position, error):
                self._failed = False
            clear = not self._failed and error is None and self._has_error
            self._has_error = error is not None or (self._has_error and not clear)
            # a clear not written yet must survive a later note (running, then idle)
            clear = clear or (error is None and self._pending is not None and self._pending[2])
            if self._noted != (state, error) or clear:
                self._noted = (state, error)
                self._pending = (state, stored, clear)
                self._cond.notify()

    def _succeeded(self, state: str, position: int | None, error: str | None) -> bool:
        if state == "idle" or (state == "stopped" and error is None):
            return True
        return (position is not None and self._failed_at is not None
                and position > self._failed_at)

    def start(self, state: str = "starting", position: int | None = None) -> None:
        """Write the first row synchronously (noting a dead predecessor), then start the
        heartbeat thread. A previous error stays until this instance succeeds."""
        error = self._predecessor_death()
        record_state(self._store, self.name, state, pid=self.pid, host=self.host,
                     position=position, error=error)
        self._position = self._failed_at = position
        self._noted = (state, None)
        self._thread = threading.Thread(target=self._loop, name=f"esctl-state-{self.name}",
                                        daemon=True)
        self._thread.start()

    def _predecessor_death(self) -> str | None:
        """The error to record when the previous instance died without a word."""
        previous = read_state(self._store, self.name)
        if previous is None or not previous.is_stale() or previous.last_error:
            return None  # an error it recorded says more, and stays
        age = previous.heartbeat_age()
        text = (f"the previous instance (pid {previous.pid} on {previous.host}) stopped "
                f"heartbeating while {previous.state}"
                + ("" if age is None else f", {age:.0f} s ago"))
        if previous.last_error:
            text += f"; its last error: {_summary(previous.last_error)}"
        return text

    def stop(self, state: str = "stopped", error: str | None = None) -> None:
        """Stop the thread and write the final state synchronously."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._cond:
            pending, self._pending = self._pending, None
        if error is None and pending is not None:
            error = pending[1]  # noted but not written yet
        clear = error is None and not self._failed
        record_state(self._store, self.name, state, pid=self.pid, host=self.host,
                     position=self._position, error=error, clear_error=clear)

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
                state, error, clear = pending
                record_state(store, self.name, state, pid=self.pid, host=self.host,
                             position=position, error=error, clear_error=clear)
            else:
                heartbeat(store, self.name, position=position, pid=self.pid)
        except Exception as e:  # a failed state write must not stop the processor
            log.warning("%s: could not record state: %s", self.name, e)
        return True
