"""The supervising runner: each processor in its own OS process, restarted when it dies.

The parent holds no store connection. It starts one child per processor with the
multiprocessing ``spawn`` method and passes it the parent's own :class:`Settings` object
(picklable) and the processor's import path. Each child builds the application exactly as
the CLI does (:func:`~esctl_lib.app.configure_logging`, :func:`~esctl_lib.app.load_app`,
:func:`~esctl_lib.app.open_configured_store`: the same event modules and upcasters, hooks,
batch sizes, ``[store] connect_timeout`` and logging), then runs the startup hook, takes the
processor's lock (waiting as a quiet standby while another instance holds it), records its
state with a heartbeat, and processes until SIGTERM/SIGINT, then stops between batches.

The parent restarts a child that dies, after a delay that doubles from ``restart_delay`` up
to ``max_restart_delay`` (and starts over once a child has run ``healthy_after`` seconds),
except a child whose processor failed on an event under retry ``"none"``
(:data:`EXIT_GAVE_UP`): it stays stopped, recorded as failing, the others go on, and the
runner exits 1 at the end (at once when every processor has so stopped). A child that
loses its connection does not exit: its worker reconnects and re-takes its lock in place.
On SIGTERM/SIGINT it sends SIGTERM to every child, waits up to ``grace_period`` seconds,
then kills stragglers; it returns 0 when every child stopped cleanly.

**Shared reads.** Processors that share reads (``Processor.shared_read``, default True, and
``[processing] shared_reads``, default true) run together in one child, one thread each,
fed by one :class:`~esctl_lib.processing.fanout.SharedFeed`: each page is read and decoded
once for all of them. Each keeps its own store connection, lock, standby, state,
transactions and retries; in that child the runner's rules apply per processor (one that
fails is restarted in place with the same doubling delay, one that gave up stays stopped
while the others go on, one that lost its lock waits again as a standby). What they share
is the process: a crash of the interpreter (a segfault, a kill) takes them all down and
the runner restarts them together. A processor with ``shared_read = False`` (or a
partition) gets a child of its own, as every processor did before.

**Partitions.** A processor with ``partitions = N`` runs as ``N`` children, one per
partition (:mod:`esctl_lib.processing.partitions`), each with its own lock: several
runners on one store share the partitions out (a child whose partition another runner
holds is a standby for it).
"""

from __future__ import annotations

import contextlib
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
from typing import TYPE_CHECKING, Any

from esctl_lib import metrics
from esctl_lib.app import (
    PROCESS_LOG_FORMAT,
    Application,
    configure_logging,
    load_app,
    open_configured_store,
)
from esctl_lib.config import Settings
from esctl_lib.errors import ConfigError, EsctlError, ProcessingError, ProcessorLockedError
from esctl_lib.processing.fanout import FeedReader, SharedFeed
from esctl_lib.processing.locks import ProcessorLock, processor_lock, wait_for_lock
from esctl_lib.processing.partitions import (
    check_partition_count,
    event_filter,
    expand_partitions,
    partition_processors,
)
from esctl_lib.processing.retry import retry_policy, retry_policy_for
from esctl_lib.processing.state import (
    HEARTBEAT_INTERVAL,
    StateRecorder,
    record_exit,
    record_standby,
    release_state,
)
from esctl_lib.processing.worker import run_processor
from esctl_lib.stores.base import EventStore

if TYPE_CHECKING:
    from esctl_lib.processing.processor import Processor

log = logging.getLogger("esctl.runner")
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

#: A child's exit code: it stopped cleanly.
EXIT_STOPPED = 0
#: A child's exit code: its processor failed (or the application could not be built).
EXIT_FAILED = 1
#: A child's exit code: it lost its processor lock to another instance and stepped down,
#: so that the runner starts it again (as a standby).
EXIT_LOCK_LOST = 3
#: A child's exit code: an event failed and the retry policy says stop ("none"): the
#: runner leaves it stopped (no restart) and exits 1 at the end.
EXIT_GAVE_UP = 4
#: ``run_once``'s code for a processor that parked events (it reached the head).
EXIT_PARKED = 1


@dataclass(frozen=True)
class RunnerSettings:
    """What each child receives, all picklable (no connection crosses a process boundary):
    the parent's settings object itself, and the runner's timings."""

    settings: Settings
    idle_timeout: float = 0.5
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    standby_poll: float = 1.0
    log_format: str = PROCESS_LOG_FORMAT
    #: Within a child of several processors: the first restart delay of one that failed,
    #: doubling up to ``max_restart_delay`` (the runner's own defaults).
    restart_delay: float = 1.0
    max_restart_delay: float = 30.0
    healthy_after: float = 60.0


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


# -- one instance of one processor (in a child, or in-process for `once`) ------------------
def run_instance(
    app: Application,
    processor: Processor,
    options: RunnerSettings,
    stop: threading.Event,
    *,
    once: bool = False,
    lock_timeout: float | None = None,
    feed: FeedReader | None = None,
) -> int:
    """Run one processor of ``app``: hook, store, lock, state, work. Returns an exit code.

    ``lock_timeout`` None waits as a standby for as long as it takes (the runner's
    children); a number gives up after that many seconds with ProcessorLockedError.
    ``feed`` is its place on a shared read (the runner's children of several processors).
    """
    if app.startup_hook is not None:
        app.startup_hook(processor)
    with open_configured_store(app.settings) as store, \
            processor_lock(store, processor.name) as lock:
        check_partition_count(store, processor)
        if not _take_lock(lock, store, options, stop, lock_timeout):
            return EXIT_STOPPED
        return _process(app, processor, store, lock, options, stop, once, feed)


def _take_lock(lock: ProcessorLock, store: EventStore, options: RunnerSettings,
               stop: threading.Event, timeout: float | None) -> bool:
    pid = os.getpid()
    try:
        return wait_for_lock(lock, stop, poll=options.standby_poll, timeout=timeout,
                             every=options.heartbeat_interval,
                             while_waiting=lambda: record_standby(store, lock.name, pid=pid))
    finally:
        if not lock.held:  # stopped, or gave up, while a standby
            release_state(store, lock.name, pid=pid)


def _process(app: Application, processor: Processor, store: EventStore, lock: ProcessorLock,
             options: RunnerSettings, stop: threading.Event, once: bool,
             feed: FeedReader | None = None) -> int:
    name = processor.name
    processing = app.settings.processing
    kwargs = {} if processing.max_attempts is None else {"max_attempts": processing.max_attempts}
    policy = retry_policy_for(processor, processing.retry, **kwargs)
    if once and policy.max_attempts is None:
        policy = retry_policy("none")  # a cron job must not retry a poison event for ever
    recorder = StateRecorder(store, name, interval=options.heartbeat_interval)
    recorder.start("starting", position=store.get_tracker(name))
    log.info("Starting %s", name)
    stepped_down = threading.Event()

    def on_state(state: str, position: int, error: str | None) -> None:
        if state == "stopped" and not lock.held:
            stepped_down.set()
        recorder.update(state, position, error)

    metrics.instrument(processor)  # counts batches when the runner serves metrics
    try:
        parked = run_processor(processor, store, stop=stop, once=once, retry=policy,
                               on_error=app.on_error, on_state=on_state,
                               idle_timeout=options.idle_timeout, lock=lock, feed=feed)
    except Exception as e:
        message = describe_error(e)
        if isinstance(e, EsctlError):
            log.error("%s stopped: %s", name, message)
        else:
            log.exception("An unhandled exception occurred in %s", name)
        recorder.stop("failing", error=message)
        gave_up = isinstance(e, ProcessingError) and e.event_id is not None
        return EXIT_GAVE_UP if gave_up and not once else EXIT_FAILED
    recorder.stop("stopped")
    log.info("Stopping %s", name)
    if stepped_down.is_set():
        return EXIT_LOCK_LOST
    if once and parked:
        log.error("%s parked %d event(s) (see esctl errors %s)", name, parked, name)
        return EXIT_PARKED
    return EXIT_STOPPED


def describe_error(error: BaseException) -> str:
    """One line: the error, and its cause when it has one."""
    text = f"{type(error).__name__}: {error}"
    cause = error.__cause__
    if cause is not None and str(cause) not in str(error):
        text += f" (caused by {type(cause).__name__}: {cause})"
    return text


# -- the child process ---------------------------------------------------------------------
Member = tuple[str, str]  # (the processor's [app] processors reference, its name)


def _child_main(members: tuple[Member, ...], options: RunnerSettings) -> None:
    """Entry point of a spawned child: builds the application as the CLI does, runs the
    processor(s) configured as ``members`` (several: on a shared read, one thread each),
    and exits with run_instance's code (or the group's, see :func:`_run_group`)."""
    settings = options.settings
    configure_logging(settings, fmt=options.log_format)
    stop = threading.Event()
    targets = tuple(dict.fromkeys(target for target, _ in members))
    with trapping_stop_signals(stop.set):
        _watch_parent(stop)
        try:
            app = load_app(settings, only=targets)
            processors = _member_processors(app, members)
            if len(processors) == 1:
                code = run_instance(app, processors[0], options, stop)
            else:
                code = _run_group(app, processors, options, stop)
        except EsctlError as e:
            log.error("%s: %s", ", ".join(targets), describe_error(e))
            code = EXIT_FAILED
    logging.shutdown()
    sys.exit(code)


def _member_processors(app: Application, members: tuple[Member, ...]) -> list[Processor]:
    """The processor (or partition) each member names."""
    by_name = {part.name: part for p in app.processors.values()
               for part in partition_processors(p)}
    return [by_name[name] for _, name in members]


def _run_group(app: Application, processors: list[Processor], options: RunnerSettings,
               stop: threading.Event) -> int:
    """Run several processors in this process, one thread each, on one shared read.

    Each thread applies the runner's rules to its processor. The group's exit code:
    :data:`EXIT_GAVE_UP` when every processor gave up (or, once stopped, when one did:
    the runner then exits 1), else :data:`EXIT_STOPPED`.
    """
    feed = SharedFeed.for_readers([p.types(app.registry) for p in processors],
                                  [p.batch_size for p in processors])
    codes: dict[str, int] = {}
    threads = [threading.Thread(target=lambda p=p: codes.__setitem__(
                   p.name, _run_member(app, p, options, stop, feed)),
                   name=f"esctl-{p.name}") for p in processors]
    for thread in threads:
        thread.start()
    # Join with a timeout: a stop signal the kernel delivers to another thread runs its
    # Python handler only when this (the main) thread next wakes up.
    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(0.2)
    gave_up = [name for name, code in codes.items() if code == EXIT_GAVE_UP]
    return EXIT_GAVE_UP if gave_up else EXIT_STOPPED


def _run_member(app: Application, processor: Processor, options: RunnerSettings,
                stop: threading.Event, feed: SharedFeed) -> int:
    """One processor of a group, restarted in place as the runner restarts a child."""
    name, delay = processor.name, options.restart_delay
    log.info("started %s (thread of pid %s, shared read)", name, os.getpid())
    while True:
        started = time.monotonic()
        reader = feed.reader(handled=processor.handled_types(), accept=event_filter(processor))
        try:
            code = run_instance(app, processor, options, stop, feed=reader)
        except EsctlError as e:
            log.error("%s: %s", name, describe_error(e))
            code = EXIT_FAILED
        except Exception:
            log.exception("An unhandled exception occurred in %s", name)
            code = EXIT_FAILED
        finally:
            reader.close()
        if stop.is_set():
            return code if code == EXIT_GAVE_UP else EXIT_STOPPED
        if code == EXIT_GAVE_UP:
            log.error("%s failed on an event and its retry policy is \"none\": left "
                      "stopped (fix it, then skip or retry; see esctl status)", name)
            return code
        if code == EXIT_LOCK_LOST:
            continue  # wait again, as a standby
        if time.monotonic() - started >= options.healthy_after:
            delay = options.restart_delay
        log.warning("%s exited with %s; restarting in %g s", name, describe_exit(code), delay)
        if stop.wait(delay):
            return EXIT_STOPPED
        delay = min(delay * 2, options.max_restart_delay)


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


# -- the parent ----------------------------------------------------------------------------
@dataclass
class _Child:
    members: tuple[Member, ...]
    name: str
    process: BaseProcess | None = None
    started_at: float = 0.0
    delay: float = 0.0
    restart_at: float | None = None
    exit_code: int | None = None


@dataclass
class Runner:
    """Supervises one child process per processor. See the module docstring.

    ``names`` are processor names (default: every configured one); ``app`` is the parent's
    application when it has one (default: built from ``settings.settings`` with load_app);
    ``grace_period`` defaults to ``[processing] grace_period``.
    """

    settings: RunnerSettings
    names: Sequence[str] = ()
    app: Application | None = None
    grace_period: float | None = None
    restart_delay: float = 1.0
    max_restart_delay: float = 30.0
    healthy_after: float = 60.0
    _children: list[_Child] = field(default_factory=list, init=False)
    _stopping: bool = field(default=False, init=False)
    _signals: int = field(default=0, init=False)
    _wake: tuple[int, int] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        app = self.app if self.app is not None else load_app(self.settings.settings)
        if self.grace_period is None:
            self.grace_period = app.settings.processing.grace_period
        check_partitions(app, self.names)
        shared: list[Member] = []
        seen: set[str] = set()
        for processor in app.select(self.names):
            name = processor.name
            if name in seen:
                raise ConfigError(f"processor {name!r} is listed twice")
            seen.add(name)
            parts = partition_processors(processor)
            for part in parts:
                member = (app.targets[name], part.name)
                if (len(parts) == 1 and processor.shared_read
                        and app.settings.processing.shared_reads):
                    shared.append(member)
                else:
                    self._children.append(_Child((member,), part.name,
                                                 delay=self.restart_delay))
        groups = min(max(1, app.settings.processing.read_groups), len(shared))
        for index in reversed(range(groups)):
            members = tuple(shared[index::groups])
            self._children.insert(0, _Child(members, ", ".join(n for _, n in members),
                                            delay=self.restart_delay))

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
                while not self._stopping and not self._all_gave_up():
                    self._supervise_once(ctx)
                return self._shutdown()
        finally:
            for fd in self._wake:
                os.close(fd)
            self._wake = None

    def _all_gave_up(self) -> bool:
        return all(c.exit_code == EXIT_GAVE_UP for c in self._children)

    def _start(self, ctx: Any, child: _Child) -> None:
        process = ctx.Process(target=_child_main, args=(child.members, self.settings),
                              name=child.name, daemon=False)
        with _children_ignore_sigint():
            process.start()
        child.process, child.started_at, child.restart_at, child.exit_code = (
            process, time.monotonic(), None, None)
        for _, name in child.members:
            log.info("started %s (pid %s)", name, process.pid)

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
            self._record_exit(c, c.process.pid, code)
            if not restart:
                log.info("%s stopped (%s)", c.name, describe_exit(code))
                continue
            if code == EXIT_GAVE_UP:
                log.error("%s failed on an event and its retry policy is \"none\": left "
                          "stopped (fix it, then skip or retry; see esctl status)", c.name)
                continue
            if time.monotonic() - c.started_at >= self.healthy_after:
                c.delay = self.restart_delay
            log.warning("%s exited with %s; restarting in %g s",
                        c.name, describe_exit(code), c.delay)
            metrics.note_restart(c.name)
            c.restart_at = time.monotonic() + c.delay
            c.delay = min(c.delay * 2, self.max_restart_delay)
            c.process = None

    def _record_exit(self, child: _Child, pid: int | None, code: int | None) -> None:
        """Record a child's abnormal exit in its processor's state: it may have died
        before it could (a crash, a kill, a full disk)."""
        if pid is None or code in (EXIT_STOPPED, EXIT_LOCK_LOST, -signal.SIGTERM):
            return
        try:
            with open_configured_store(self.settings.settings) as store:
                for _, name in child.members:
                    record_exit(store, name, pid=pid, exit_code=code,
                                description=describe_exit(code))
        except Exception as e:  # the store may be the reason it died
            log.warning("%s: could not record its exit: %s", child.name, e)

    def _shutdown(self) -> int:
        alive = [c for c in self._children if c.process is not None and c.exit_code is None]
        if alive:
            log.info("Sending TERM to [%s]", ", ".join(c.name for c in alive))
        for c in alive:
            assert c.process is not None
            with contextlib.suppress(OSError):
                c.process.terminate()
        grace = self.grace_period or 0.0
        deadline, signals = time.monotonic() + grace, self._signals
        reason = f"did not stop within {grace:g} s"
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
        failed = [c.name for c in self._children
                  if c.exit_code not in (EXIT_STOPPED, -signal.SIGTERM)]
        if self._all_gave_up():
            log.error("every processor failed with retry \"none\"; the runner stops")
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
    app: Application,
    names: Sequence[str] = (),
    *,
    once: bool = False,
    lock_timeout: float = 0.0,
    options: RunnerSettings | None = None,
    install_signal_handlers: bool = True,
) -> int:
    """Run ``app``'s processors called ``names`` (default: every configured one).

    Continuous mode runs each in its own process until SIGTERM/SIGINT. ``once`` runs them
    one after another in this process up to the current head; a processor that a live
    runner holds is skipped with an error, after waiting up to ``lock_timeout`` seconds.
    Returns the exit code: 0 when everything stopped cleanly (or reached the head).
    """
    options = options if options is not None else RunnerSettings(app.settings)
    if once:
        check_partitions(app, names)
        return run_once(app, names, options, lock_timeout=lock_timeout,
                        install_signal_handlers=install_signal_handlers)
    runner = Runner(options, names, app)
    return runner.run(install_signal_handlers=install_signal_handlers)


def run_once(app: Application, names: Sequence[str] = (), options: RunnerSettings | None = None,
             *, lock_timeout: float = 0.0, install_signal_handlers: bool = True) -> int:
    """Process each named processor up to the head, in this process, one after another."""
    options = options if options is not None else RunnerSettings(app.settings)
    processors = expand_partitions(app.select(names))
    stop, code = threading.Event(), EXIT_STOPPED
    with trapping_stop_signals(stop.set, install=install_signal_handlers):
        for processor in processors:
            if stop.is_set():
                break
            try:
                result = run_instance(app, processor, options, stop, once=True,
                                      lock_timeout=lock_timeout)
            except ProcessorLockedError as e:
                log.error("skipped: %s", e)
                result = EXIT_FAILED
            code = max(code, result)
    return code


def check_partitions(app: Application, names: Sequence[str] = ()) -> None:
    """Refuse (ConfigError) to run a processor whose partition count changed since its
    trackers were written, until it is replayed (see
    :func:`~esctl_lib.processing.partitions.check_partition_count`). A store that cannot
    be read now is no error here: each child checks again when it has its store."""
    try:
        with open_configured_store(app.settings) as store:
            for processor in app.select(names):
                check_partition_count(store, processor)
    except ConfigError:
        raise
    except EsctlError as e:  # unreachable, not set up...: the children report it
        log.debug("partition layout not checked yet: %s", e)
