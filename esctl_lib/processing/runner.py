"""The supervising runner: each processor in its own OS process, restarted when it dies.

The parent holds no store connection. It starts one child per processor with the
multiprocessing ``spawn`` method and passes it only picklable settings (store URL, the
processor's import path). Each child runs the startup hook, opens its own store, takes the
processor's lock (waiting as a quiet standby while another instance holds it), records its
state with a heartbeat, and processes until SIGTERM/SIGINT, then stops between batches.

The parent restarts a child that dies, after a delay that doubles from ``restart_delay`` up
to ``max_restart_delay`` (and starts over once a child has run ``healthy_after`` seconds).
On SIGTERM/SIGINT it sends SIGTERM to every child, waits up to ``grace_period`` seconds,
then kills stragglers; it returns 0 when every child stopped cleanly.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_any
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from esctl_lib.errors import ConfigError, EsctlError, ProcessorLockedError
from esctl_lib.processing.locks import ProcessorLock, processor_lock, wait_for_lock
from esctl_lib.processing.retry import retry_policy, retry_policy_for
from esctl_lib.processing.state import (
    HEARTBEAT_INTERVAL,
    StateRecorder,
    record_standby,
    release_state,
)
from esctl_lib.processing.worker import run_processor
from esctl_lib.stores import open_store
from esctl_lib.stores.base import EventStore

log = logging.getLogger("esctl.runner")
#: The log line format children use (the CLI may use it too).
LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s[%(process)d] %(name)s: %(message)s"
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True)
class RunnerSettings:
    """Everything a child needs, all picklable: no connection crosses a process boundary."""

    store_url: str
    schema: str | None = None
    synchronous: str = "FULL"
    base_dir: str | None = None
    sys_path: tuple[str, ...] = ()
    retry: str | None = None
    max_attempts: int | None = None
    batch_size: int | None = None
    startup_hook: str | None = None
    on_error: str | None = None
    idle_timeout: float = 0.5
    log_level: str = "INFO"
    log_file: str | None = None
    log_format: str = LOG_FORMAT
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    standby_poll: float = 1.0

    def open(self) -> EventStore:
        """A new store handle (a fresh connection)."""
        return open_store(self.store_url, base_dir=self.base_dir, schema=self.schema,
                          synchronous=self.synchronous)


# -- import paths --------------------------------------------------------------------------
def load_object(path: str) -> Any:
    """Import ``"package.module:Name"`` (``Name`` may be dotted)."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"invalid import path {path!r}: write package.module:Name")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"cannot import {module_name!r} (from {path!r}): {e}") from e
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as e:
            raise ConfigError(f"{module_name!r} has no {attr!r} (from {path!r})") from e
    return obj


def import_path(obj: Any) -> str:
    """The ``"module:QualName"`` import path of a class or function."""
    if isinstance(obj, str):
        return obj
    qualname = getattr(obj, "__qualname__", "")
    if "<locals>" in qualname or not getattr(obj, "__module__", None):
        raise ConfigError(f"{obj!r} is not importable by path: define it at module level")
    return f"{obj.__module__}:{qualname}"


def build_processor(target: Any) -> Any:
    """A processor instance from an import path, a processor class or an instance."""
    obj = load_object(target) if isinstance(target, str) else target
    processor = obj() if isinstance(obj, type) else obj
    name = getattr(processor, "name", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{target!r} is not a processor: it has no name")
    return processor


@contextlib.contextmanager
def trapping_stop_signals(handler: Callable[[], None], *, install: bool = True
                          ) -> Iterator[None]:
    """Call ``handler`` on SIGTERM/SIGINT (main thread only); old handlers come back after."""
    previous: dict[int, Any] = {}
    if install and threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, lambda *_: handler()) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def extra_sys_path(paths: Sequence[str]) -> Iterator[None]:
    """Prepend ``paths`` to ``sys.path`` for the duration."""
    added = [p for p in paths if p not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for p in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(p)


# -- one instance of one processor (in a child, or in-process for `once`) ------------------
def run_instance(
    target: Any,
    settings: RunnerSettings,
    stop: threading.Event,
    *,
    once: bool = False,
    lock_timeout: float | None = None,
) -> int:
    """Run one processor: hook, store, lock, state, work. Returns an exit code (0 = clean).

    ``lock_timeout`` None waits as a standby for as long as it takes (the runner's
    children); a number gives up after that many seconds with ProcessorLockedError.
    """
    processor = build_processor(target)
    if settings.batch_size is not None and not _declares(processor, "batch_size"):
        processor.batch_size = settings.batch_size
    if settings.startup_hook:
        load_object(settings.startup_hook)(processor)
    with settings.open() as store, processor_lock(store, processor.name) as lock:
        if not _take_lock(lock, store, settings, stop, lock_timeout):
            return 0
        return _process(processor, store, lock, settings, stop, once)


def _take_lock(lock: ProcessorLock, store: EventStore, settings: RunnerSettings,
               stop: threading.Event, timeout: float | None) -> bool:
    pid = os.getpid()
    try:
        return wait_for_lock(lock, stop, poll=settings.standby_poll, timeout=timeout,
                             every=settings.heartbeat_interval,
                             while_waiting=lambda: record_standby(store, lock.name, pid=pid))
    finally:
        if not lock.held:  # stopped, or gave up, while a standby
            release_state(store, lock.name, pid=pid)


def _declares(processor: Any, attribute: str) -> bool:
    """Whether the processor's own classes (not the library's bases) set ``attribute``."""
    return any(attribute in vars(k) for k in type(processor).__mro__
               if not k.__module__.startswith("esctl_lib."))


def _process(processor: Any, store: EventStore, lock: ProcessorLock,
             settings: RunnerSettings, stop: threading.Event, once: bool) -> int:
    name = processor.name
    kwargs = {} if settings.max_attempts is None else {"max_attempts": settings.max_attempts}
    policy = retry_policy_for(processor, settings.retry or "constant", **kwargs)
    if once and policy.max_attempts is None:
        policy = retry_policy("none")  # a cron job must not retry a poison event for ever
    on_error = load_object(settings.on_error) if settings.on_error else None
    lost = threading.Event()

    def on_lost() -> None:
        log.error("%s lost its lock (connection to the database gone); stopping", name)
        lost.set()
        stop.set()

    recorder = StateRecorder(store, name, interval=settings.heartbeat_interval,
                             check=lock.check, on_lost=on_lost)
    recorder.start("starting", position=store.get_tracker(name))
    log.info("Starting %s", name)
    try:
        run_processor(processor, store, stop=stop, once=once, retry=policy, on_error=on_error,
                      on_state=recorder.update, idle_timeout=settings.idle_timeout)
    except Exception as e:
        message = describe_error(e)
        if isinstance(e, EsctlError):
            log.error("%s stopped: %s", name, message)
        else:
            log.exception("An unhandled exception occurred in %s", name)
        recorder.stop("failing", error=message)
        return 1
    recorder.stop("stopped")
    log.info("Stopping %s", name)
    return 3 if lost.is_set() else 0


def describe_error(error: BaseException) -> str:
    """One line: the error, and its cause when it has one."""
    text = f"{type(error).__name__}: {error}"
    cause = error.__cause__
    if cause is not None and str(cause) not in str(error):
        text += f" (caused by {type(cause).__name__}: {cause})"
    return text


# -- the child process ---------------------------------------------------------------------
def _child_main(target: str, settings: RunnerSettings) -> None:
    """Entry point of a spawned child: exits with run_instance's code."""
    configure_logging(settings.log_level, settings.log_file, settings.log_format)
    stop = threading.Event()
    with trapping_stop_signals(stop.set), extra_sys_path(settings.sys_path):
        _watch_parent(stop)
        try:
            code = run_instance(target, settings, stop)
        except EsctlError as e:
            log.error("%s: %s", target, describe_error(e))
            code = 1
    logging.shutdown()
    sys.exit(code)


def _watch_parent(stop: threading.Event) -> None:
    """Stop (between batches) when the runner that started this child dies."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait_any([parent.sentinel])
        if not stop.is_set():
            log.warning("the runner (pid %s) is gone; stopping", parent.pid)
            stop.set()

    threading.Thread(target=watch, name="esctl-parent-watch", daemon=True).start()


def configure_logging(level: str, log_file: str | None = None,
                      log_format: str = LOG_FORMAT) -> None:
    """Log to stderr (or append to ``log_file``) at ``level``: for a fresh child process."""
    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter(log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


# -- the parent ----------------------------------------------------------------------------
@dataclass
class _Child:
    target: str
    name: str
    process: BaseProcess | None = None
    started_at: float = 0.0
    delay: float = 0.0
    restart_at: float | None = None
    exit_code: int | None = None


@dataclass
class Runner:
    """Supervises one child process per processor. See the module docstring."""

    settings: RunnerSettings
    processors: Sequence[Any]
    grace_period: float = 30.0
    restart_delay: float = 1.0
    max_restart_delay: float = 30.0
    healthy_after: float = 60.0
    _children: list[_Child] = field(default_factory=list, init=False)
    _stopping: bool = field(default=False, init=False)
    _signals: int = field(default=0, init=False)
    _wake: tuple[int, int] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        with extra_sys_path(self.settings.sys_path):
            for path in map(import_path, self.processors):
                name = build_processor(path).name
                if name in (c.name for c in self._children):
                    raise ConfigError(f"processor {name!r} is listed twice")
                self._children.append(_Child(path, name, delay=self.restart_delay))

    def request_stop(self) -> None:
        """Ask the runner to shut down (safe from a signal handler or another thread)."""
        self._stopping = True
        self._signals += 1
        if self._wake is not None:
            with contextlib.suppress(OSError):
                os.write(self._wake[1], b"x")

    def run(self, *, install_signal_handlers: bool = True) -> int:
        """Start every child and supervise until asked to stop; returns the exit code."""
        self._wake = os.pipe()
        for fd in self._wake:
            os.set_blocking(fd, False)
        try:
            with trapping_stop_signals(self.request_stop, install=install_signal_handlers):
                log.info("runner starting %d processor(s): %s", len(self._children),
                         ", ".join(c.name for c in self._children))
                ctx = multiprocessing.get_context("spawn")
                for child in self._children:
                    self._start(ctx, child)
                while not self._stopping:
                    self._supervise_once(ctx)
                return self._shutdown()
        finally:
            for fd in self._wake:
                os.close(fd)
            self._wake = None

    def _start(self, ctx: Any, child: _Child) -> None:
        process = ctx.Process(target=_child_main, args=(child.target, self.settings),
                              name=child.name, daemon=False)
        with _children_ignore_sigint():
            process.start()
        child.process, child.started_at, child.restart_at, child.exit_code = (
            process, time.monotonic(), None, None)
        log.info("started %s (pid %s)", child.name, process.pid)

    def _waitables(self) -> list[Any]:
        assert self._wake is not None
        live = [c.process.sentinel for c in self._children
                if c.process is not None and c.exit_code is None]
        return [*live, self._wake[0]]

    def _drain_wake(self) -> None:
        assert self._wake is not None
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake[0], 1024)

    def _supervise_once(self, ctx: Any) -> None:
        now = time.monotonic()
        waits = [c.restart_at - now for c in self._children if c.restart_at is not None]
        wait_any(self._waitables(), max(0.0, min([1.0, *waits])))
        self._drain_wake()
        self._reap(restart=not self._stopping)
        if self._stopping:
            return
        now = time.monotonic()
        for c in self._children:
            if c.restart_at is not None and c.restart_at <= now:
                self._start(ctx, c)

    def _reap(self, *, restart: bool) -> None:
        for c in self._children:
            if c.process is None or c.process.exitcode is None or c.exit_code is not None:
                continue
            c.process.join()
            c.exit_code = code = c.process.exitcode
            if not restart:
                log.info("%s stopped (%s)", c.name, describe_exit(code))
                continue
            if time.monotonic() - c.started_at >= self.healthy_after:
                c.delay = self.restart_delay
            log.warning("%s exited with %s; restarting in %g s",
                        c.name, describe_exit(code), c.delay)
            c.restart_at = time.monotonic() + c.delay
            c.delay = min(c.delay * 2, self.max_restart_delay)
            c.process = None

    def _shutdown(self) -> int:
        alive = [c for c in self._children if c.process is not None and c.exit_code is None]
        if alive:
            log.info("Sending TERM to [%s]", ", ".join(c.name for c in alive))
        for c in alive:
            assert c.process is not None
            with contextlib.suppress(OSError):
                c.process.terminate()
        deadline, signals = time.monotonic() + self.grace_period, self._signals
        reason = f"did not stop within {self.grace_period:g} s"
        while any(c.exit_code is None and c.process is not None for c in self._children):
            remaining = deadline - time.monotonic()
            if self._signals > signals:
                reason = "asked to stop twice"
            if remaining <= 0 or self._signals > signals:
                break
            wait_any(self._waitables(), remaining)
            self._drain_wake()
            self._reap(restart=False)
        self._kill_stragglers(reason)
        # -SIGTERM: a child stopped before it had set its handler, so before any work
        failed = [c.name for c in self._children if c.exit_code not in (0, -signal.SIGTERM)]
        if failed:
            log.warning("runner stopped; not cleanly: %s", ", ".join(failed))
            return 1
        log.info("runner stopped; all processors stopped cleanly")
        return 0

    def _kill_stragglers(self, reason: str) -> None:
        for c in self._children:
            if c.process is None or c.exit_code is not None:
                continue
            log.warning("%s %s; killing it", c.name, reason)
            with contextlib.suppress(OSError):
                c.process.kill()
            c.process.join()
            c.exit_code = c.process.exitcode


@contextlib.contextmanager
def _children_ignore_sigint() -> Iterator[None]:
    """Children started in the block inherit SIGINT ignored: a Ctrl-C reaches the whole
    foreground process group, and one landing while a child's interpreter starts up kills
    it with ``Fatal Python error: init_import_site``. The runner forwards the stop instead
    (SIGTERM); a child handles SIGINT again once it has set its own handlers. A SIGINT sent
    to the runner meanwhile is held (blocked, not ignored) and delivered afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def describe_exit(code: int | None) -> str:
    """``code 1`` or ``signal 9 (SIGKILL)`` for a process exit code."""
    if code is None or code >= 0:
        return f"code {code}"
    name = signal.Signals(-code).name if -code in signal.valid_signals() else "?"
    return f"signal {-code} ({name})"


# -- the public entry point ----------------------------------------------------------------
def run(
    store_url: str,
    processors: Sequence[Any],
    *,
    schema: str | None = None,
    synchronous: str = "FULL",
    base_dir: str | Path | None = None,
    sys_path: Sequence[str] = (),
    once: bool = False,
    grace_period: float = 30.0,
    retry: str | None = "exponential",
    max_attempts: int | None = None,
    batch_size: int | None = None,
    startup_hook: str | None = None,
    on_error: str | None = None,
    idle_timeout: float = 0.5,
    log_level: str = "INFO",
    log_file: str | None = None,
    log_format: str = LOG_FORMAT,
    lock_timeout: float = 0.0,
    install_signal_handlers: bool = True,
) -> int:
    """Run ``processors`` (import paths ``"module:Class"`` or classes) against a store.

    Continuous mode runs each in its own process until SIGTERM/SIGINT. ``once`` runs them
    one after another in this process up to the current head; a processor that a live
    runner holds is skipped with an error, after waiting up to ``lock_timeout`` seconds.
    Returns the exit code: 0 when everything stopped cleanly (or reached the head).
    """
    settings = RunnerSettings(
        store_url=store_url, schema=schema, synchronous=synchronous,
        base_dir=None if base_dir is None else str(base_dir), sys_path=tuple(sys_path),
        retry=retry, max_attempts=max_attempts, batch_size=batch_size,
        startup_hook=startup_hook, on_error=on_error,
        idle_timeout=idle_timeout, log_level=log_level, log_file=log_file,
        log_format=log_format,
    )
    if retry is not None:
        retry_policy(retry)  # a bad name fails here, not in every child
    if once:
        return run_once(settings, processors, lock_timeout=lock_timeout,
                        install_signal_handlers=install_signal_handlers)
    runner = Runner(settings, processors, grace_period=grace_period)
    return runner.run(install_signal_handlers=install_signal_handlers)


def run_once(settings: RunnerSettings, processors: Sequence[Any], *,
             lock_timeout: float = 0.0, install_signal_handlers: bool = True) -> int:
    """Process each processor up to the head, in this process, one after another."""
    stop, code = threading.Event(), 0
    with trapping_stop_signals(stop.set, install=install_signal_handlers), \
            extra_sys_path(settings.sys_path):
        for target in processors:
            if stop.is_set():
                break
            try:
                result = run_instance(target, settings, stop, once=True,
                                      lock_timeout=lock_timeout)
            except ProcessorLockedError as e:
                log.error("skipped: %s", e)
                result = 1
            code = max(code, result)
    return code

