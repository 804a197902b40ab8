"""Processors the runner tests start by import path (``tests.processing.runner_apps.apps:X``).

Children write what they did to files under ``$ESCTL_RUNNER_TEST_DIR`` (one line per
note, appended atomically), so a test can see across processes what ran, where and when.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from esctl_lib import Event, Transaction, handles
from esctl_lib.processing.processor import Processor
from esctl_lib.processing.projector import Projector


class RunnerTick(Event, type_name="runner_tick"):
    pass


def note(file: str, *fields: object) -> None:
    """Append one line of space-separated fields to ``$ESCTL_RUNNER_TEST_DIR/file``."""
    line = (" ".join(str(f) for f in fields) + "\n").encode()
    fd = os.open(Path(os.environ["ESCTL_RUNNER_TEST_DIR"]) / file,
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_notes(directory: Path, file: str) -> list[list[str]]:
    """The lines ``note`` wrote, split into fields."""
    path = directory / file
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


class TickCounter(Projector):
    """Counts ticks per aggregate."""

    name = "tick_counter"
    batch_size = 500
    tables = {"tick_counts": "CREATE TABLE IF NOT EXISTS tick_counts "
                             "(aggregate_id TEXT PRIMARY KEY, n INTEGER NOT NULL)"}

    @handles(RunnerTick)
    def _tick(self, event: Event, tx: Transaction) -> None:
        p = tx.placeholder
        write = getattr(tx, "defer", tx.execute)  # the worker's batch tx queues writes
        write(
            f"INSERT INTO tick_counts (aggregate_id, n) VALUES ({p}, 1) ON CONFLICT "
            "(aggregate_id) DO UPDATE SET n = tick_counts.n + 1",
            (event.aggregate_id,),
        )


class Crasher(Processor):
    """Crashes as it starts, before any event (retry "none"); notes each attempt's pid.

    (A failing *event* under retry "none" stops the processor for good: PoisonStopper.)
    """

    name = "crasher"
    retry = "none"

    def setup(self, store: Any) -> None:
        note("crasher", os.getpid())
        raise RuntimeError("crash on purpose")

    @handles(RunnerTick)
    def _tick(self, event: Event, tx: Transaction) -> None:
        pass


class PoisonStopper(Processor):
    """Fails on the tick whose body says ``poison`` (retry "none"); notes each start's pid."""

    name = "poison_stopper"
    retry = "none"

    def setup(self, store: Any) -> None:
        note("poison_stopper", os.getpid())

    @handles(RunnerTick)
    def _tick(self, event: Event, tx: Transaction) -> None:
        if event.body.get("poison"):
            raise RuntimeError("poison on purpose")


class SlowRecorder(Processor):
    """Takes 20 ms per tick and notes (pid, start, end) of each."""

    name = "slow_recorder"
    batch_size = 5

    @handles(RunnerTick)
    def _tick(self, event: Event, tx: Transaction) -> None:
        start = time.time()
        time.sleep(0.02)
        note("intervals", os.getpid(), start, time.time(), event.id)


class HookChecker(Processor):
    """Notes whether the startup hook ran before it handled its first tick."""

    name = "hook_checker"
    hooked = False

    @handles(RunnerTick)
    def _tick(self, event: Event, tx: Transaction) -> None:
        note("handled", os.getpid(), self.name, self.hooked)


class OtherHookChecker(HookChecker):
    name = "other_hook_checker"


class Stubborn(Processor):
    """Never finishes its first tick: a child the runner must kill."""

    name = "stubborn"

    @handles(RunnerTick)
    def _tick(self, event: Event, tx: Transaction) -> None:
        note("stubborn", os.getpid())
        time.sleep(600)


def startup_hook(processor: Any) -> None:
    """The startup hook: notes the pid and marks the processor."""
    note("hooks", os.getpid(), processor.name)
    processor.hooked = True


class Failing(Processor):
    """Fails on every tick, with no retry policy of its own."""

    name = "failing"

    @handles(RunnerTick)
    def _tick(self, event: Event, tx: Transaction) -> None:
        raise RuntimeError("always fails")
