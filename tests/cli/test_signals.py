"""Signals and terminals, with real processes: Ctrl-C exits 130 from every command without a
child's traceback, SIGTERM during an export leaves no temporary file, NO_COLOR holds on a
terminal. Typer's runner calls commands in-process, so these run ``python -m esctl``."""

from __future__ import annotations

import contextlib
import os
import pty
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from esctl_lib import Event
from tests.cli.conftest import (
    AGGREGATE,
    ALL_PROCESSORS,
    Backend,
    add,
    make_backend,
    write_config,
)

DEADLINE = 60.0


def _env(backend: Backend, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    env.update({k: v for k, v in backend.env().items() if v is not None})
    env.pop("NO_COLOR", None)
    env.update(extra)
    return env


class Lines:
    """A process's stderr, read line by line in a thread (so waits have a deadline)."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)

    def wait_for(self, *texts: str) -> None:
        """Wait until every one of ``texts`` has appeared (in any order)."""
        deadline = time.monotonic() + DEADLINE
        while not all(text in "".join(self.seen) for text in texts):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"never saw {texts!r} in:\n{''.join(self.seen)}"
            with contextlib.suppress(queue.Empty):
                self.seen.append(self._queue.get(timeout=remaining))

    def rest(self) -> str:
        """Everything the process wrote, once it has exited."""
        self._thread.join(timeout=DEADLINE)
        while not self._queue.empty():
            self.seen.append(self._queue.get())
        return "".join(self.seen)


@pytest.fixture
def runner(backend: Backend, project: Path) -> Iterator[subprocess.Popen[str]]:
    """``esctl run`` in its own process group, as a terminal would run it."""
    write_config(project, processors=ALL_PROCESSORS)
    add(backend.open(), "ItemAdded", AGGREGATE, name="pen")
    proc = subprocess.Popen([sys.executable, "-m", "esctl", "run"], cwd=project,
                            env=_env(backend), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _clean_stop(output: str) -> None:
    assert "Traceback" not in output, output
    assert "Fatal Python error" not in output, output
    assert "not cleanly" not in output, output


def test_ctrl_c_while_the_runner_starts_its_children_exits_130_without_a_traceback(
    runner: subprocess.Popen[str],
) -> None:
    lines = Lines(runner.stderr)
    lines.wait_for("started cli_")  # a child is starting its interpreter
    os.killpg(runner.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
    assert runner.wait(timeout=DEADLINE) == 130
    _clean_stop(lines.rest())


def test_ctrl_c_while_processors_run_exits_130(runner: subprocess.Popen[str]) -> None:
    lines = Lines(runner.stderr)
    lines.wait_for("Starting cli_items", "Starting cli_noticer")
    os.killpg(runner.pid, signal.SIGINT)
    assert runner.wait(timeout=DEADLINE) == 130
    _clean_stop(lines.rest())


def test_sigterm_stops_the_runner_cleanly_with_exit_0(runner: subprocess.Popen[str]) -> None:
    lines = Lines(runner.stderr)
    lines.wait_for("Starting cli_items", "Starting cli_noticer")
    runner.send_signal(signal.SIGTERM)  # a service manager stops the runner only
    assert runner.wait(timeout=DEADLINE) == 0
    _clean_stop(lines.rest())


@pytest.fixture
def sqlite_backend(tmp_path: Path) -> Iterator[Backend]:
    """A set-up SQLite store (the temporary file is the same on every backend)."""
    backend = make_backend("sqlite", tmp_path)
    backend.open().setup()
    yield backend
    for store in backend.opened:
        store.close()


def test_sigterm_during_export_leaves_no_temporary_file(sqlite_backend: Backend,
                                                        project: Path) -> None:
    store = sqlite_backend.open()
    body = {"text": "x" * 200}
    with store.transaction() as tx:
        for n in range(20):
            aggregate = f"{n:08x}-8a4f-4d3e-9b9e-3f1f2a6c7d10"
            tx.append([Event(type="bulk", aggregate_id=aggregate, body=body)
                       for _ in range(2500)], expected_version=0)
    target = project / "backup.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "esctl", "export", str(target)],
                            cwd=project, env=_env(sqlite_backend),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + DEADLINE
        while not list(project.glob(".backup.jsonl.*.tmp")):
            assert proc.poll() is None, "the export ended before it could be interrupted"
            assert time.monotonic() < deadline, "the export never started writing"
            time.sleep(0.001)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=DEADLINE) == -signal.SIGTERM  # SIGTERM's own ending
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert [p.name for p in project.iterdir() if p.name != target.name] == []
    if target.exists():  # the signal came after the rename: the export is whole
        with target.open(encoding="utf-8") as f:
            assert sum(1 for _ in f) == 50_000


def _on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run ``esctl ARGS`` with stdout on a pseudo-terminal; returns what it printed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "esctl", *args], cwd=cwd, env=env,
                            stdout=slave, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + DEADLINE
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the other side closed
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=DEADLINE) == 0
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return b"".join(chunks).decode("utf-8", "replace")


def test_no_color_is_honoured_on_a_terminal(backend: Backend, project: Path) -> None:
    write_config(project)
    add(backend.open(), "ItemAdded", AGGREGATE, name="pen")
    coloured = _on_a_terminal(["tail"], project, _env(backend, TERM="xterm-256color"))
    assert "\x1b[" in coloured  # colours on a terminal by default (the check means something)
    plain = _on_a_terminal(["tail"], project, _env(backend, TERM="xterm-256color",
                                                   NO_COLOR="1"))
    assert "cli_item_added" in plain
    assert "\x1b[" not in plain


def test_ctrl_c_at_a_confirmation_prompt_exits_130(backend: Backend, project: Path) -> None:
    write_config(project, processors=ALL_PROCESSORS)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "esctl", "reset", "cli_items"],
                            cwd=project, env=_env(backend), stdin=slave, stdout=slave,
                            stderr=slave)
    os.close(slave)
    try:
        seen, deadline = b"", time.monotonic() + DEADLINE
        while b"[y/N]" not in seen:
            assert time.monotonic() < deadline, seen
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                seen += os.read(master, 4096)
        proc.send_signal(signal.SIGINT)
        while proc.poll() is None:  # a terminal keeps reading what the process writes
            assert time.monotonic() < deadline, seen
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        assert proc.wait(timeout=DEADLINE) == 130, seen
        assert b"Traceback" not in seen
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
