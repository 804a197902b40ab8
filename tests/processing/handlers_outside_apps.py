"""Processors whose handlers block on a gate, for tests/processing/test_handlers_outside_*.py.

A gate is a pair of threading.Events in the test's process (``ThreadGate``) or a pair of
files for a child process (``FileGate``: the child creates ``reached``, waits for ``open``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Protocol

from esctl_lib import Event, handles
from esctl_lib.processing import BatchTransaction, Projector, Reactor


class HotAdded(Event, type_name="hot_added"):
    pass


class HotNoticed(Event, type_name="hot_noticed"):
    pass


class Gate(Protocol):
    def block(self) -> None: ...


class ThreadGate:
    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()

    def block(self) -> None:
        self.reached.set()
        if not self.release.wait(60):
            raise TimeoutError("the test never opened the gate")


class FileGate:
    def __init__(self, folder: Path) -> None:
        self.reached = folder / "reached"
        self.open = folder / "open"

    def block(self) -> None:
        self.reached.touch()
        deadline = time.monotonic() + 120
        while not self.open.exists():  # the test opens it; it is not a timing decision
            if time.monotonic() > deadline:
                raise TimeoutError("the test never opened the gate")
            time.sleep(0.01)


class NoGate:
    def block(self) -> None:
        pass


TABLE_DDL = ("CREATE TABLE IF NOT EXISTS {} (n INTEGER PRIMARY KEY, aggregate_id TEXT NOT NULL)")


class HotProjector(Projector):
    """Inserts a row per event; blocks on the gate in the handler of ``block_on``."""

    name = "hot_projector"
    batch_size = 10
    tables = {"hot_rows": TABLE_DDL.format("hot_rows")}

    def __init__(self, gate: Gate | None = None, block_on: int = -1,
                 fail_on: int = -1) -> None:
        self.gate = gate or NoGate()
        self.block_on = block_on
        self.fail_on = fail_on

    @handles(HotAdded)
    def _added(self, event: Event, tx: BatchTransaction) -> None:
        n = int(event.body["n"])
        if n == self.fail_on:
            raise RuntimeError(f"failing on {n}")
        tx.insert("hot_rows", {"n": n, "aggregate_id": event.aggregate_id})
        if n == self.block_on:
            self.gate.block()


class HotReactor(Reactor):
    """Emits a HotNoticed per event and keeps a row; blocks before both on ``block_on``."""

    name = "hot_reactor"
    batch_size = 10
    emits = (HotNoticed,)
    tables = {"hot_reactor_rows": TABLE_DDL.format("hot_reactor_rows")}

    def __init__(self, gate: Gate | None = None, block_on: int = -1, fail_on: int = -1,
                 barrier: Any = None) -> None:
        self.gate = gate or NoGate()
        self.block_on = block_on
        self.fail_on = fail_on
        self.barrier = barrier

    @handles(HotAdded)
    def _added(self, event: Event, tx: BatchTransaction) -> None:
        n = int(event.body["n"])
        if self.barrier is not None:
            self.barrier(n)
        if n == self.block_on:
            self.gate.block()  # a slow side effect: an e-mail, say
        if n == self.fail_on:
            raise RuntimeError(f"failing on {n}")
        tx.insert("hot_reactor_rows", {"n": n, "aggregate_id": event.aggregate_id})
        self.emit(HotNoticed(aggregate_id=event.aggregate_id, body={"n": n}))
