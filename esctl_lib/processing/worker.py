"""The processing loop: read a batch from the tracker, handle it, commit it with the tracker.

:func:`run_processor` is what a runner child runs for one processor. Each batch commits in
one store transaction: the processor's rows, the events it emits and the new tracker
position commit together or not at all, so the loop is crash-safe by construction (after a
crash it resumes from the last committed batch, applying nothing twice). It checks
``stop`` between batches and wakes at least every ``idle_timeout`` seconds when idle.

**Handlers hold no write transaction.** They run first, outside any transaction, their
writes recorded; the write transaction opens at the end, sends the writes and moves the
tracker by compare-and-set (``batching.py``: ``BatchTransaction.outside``), so a slow
handler (an e-mail) never blocks another writer. A handler that reads back its own writes
opens it earlier, at that read.

**A bad event holds back nothing before it.** When a batch fails on an event, the events
before it commit (rows and tracker) in a new transaction, and the retry policy then applies
to that event alone. Parking it (after ``max_attempts``, or at once under ``"none"`` with
``max_attempts``) is its own transaction, which also moves the tracker onto it: visible at
once and kept through a crash. Each batch skips the events parked for the processor (by
``esctl skip`` too), so a worker stuck on an event moves on as soon as it is skipped.

**A lost connection is not a failure.** On :class:`StoreUnavailableError` the worker waits
for the store with backoff (50 ms doubling to 2 s), takes its lock again if its session
died (stepping down if another instance took it), and carries on in place.

A batch commits without waiting for its flush to disk where the store can do that
(:meth:`Transaction.relax_durability`; PostgreSQL turns ``synchronous_commit`` off for that
transaction only), so a slow disk does not hold up the next event. That is safe here: a
server crash can only lose the newest batches whole - rows, emitted events and tracker
together - which are then processed again. Anything that read them and committed durably
made them durable too (the WAL is flushed in order).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from esctl_lib.errors import ProcessingError, StoreUnavailableError, TrackerError
from esctl_lib.events import Event
from esctl_lib.processing.batching import BatchTransaction
from esctl_lib.processing.parking import (
    park,
    parked_in,
    process_parked,
    split_parked,
)
from esctl_lib.processing.partitions import event_filter, partition_of_processor
from esctl_lib.processing.processor import Processor
from esctl_lib.processing.reactor import Reactor, append_new
from esctl_lib.processing.retry import NoRetry, RetryPolicy, retry_policy
from esctl_lib.processing.tables import Tables
from esctl_lib.stores.base import EventStore, Page, ReadsParked, Transaction, WorkerReader
from esctl_lib.stores.locks import ProcessorLock

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from esctl_lib.processing.fanout import FeedReader

OnError = Callable[[BaseException, str], None]
OnState = Callable[[str, int, str | None], None]
#: A filtered processor saves scan-only progress (no handled event) at most this often.
SCAN_SAVE_INTERVAL = 1.0
#: An idle worker looks for parked events queued for a retry at most this often.
PARKED_CHECK_INTERVAL = 5.0
#: After a lost connection the worker tries again after this many seconds, doubling...
RECONNECT_DELAY = 0.05
#: ... up to this many.
MAX_RECONNECT_DELAY = 2.0
#: A worker holding a lock checks that it still holds it at most this often.
LOCK_CHECK_INTERVAL = 1.0
log = logging.getLogger("esctl.processing")


@dataclass
class _Failure:
    """The event failing now, and how often in a row."""

    error: ProcessingError
    attempts: int
    first_failed_at: float
    last_failed_at: float


class _Worker:
    def __init__(
        self,
        processor: Processor,
        store: EventStore,
        *,
        stop: threading.Event,
        retry: RetryPolicy,
        on_error: OnError | None,
        on_state: OnState | None,
        idle_timeout: float,
        on_batch: Callable[[int], None] | None = None,
        lock: ProcessorLock | None = None,
        feed: FeedReader | None = None,
    ) -> None:
        self.processor = processor
        self.lock = lock
        self.lock_checked_at = time.monotonic()
        #: Set when another instance took the lock while this one was cut off.
        self.stepped_down = False
        #: How many events this worker parked (``run --once`` reports them).
        self.parked = 0
        self.store = store
        self.stop = stop
        self.policy = retry
        self.on_error = on_error
        self.on_state = on_state
        self.on_batch = on_batch
        self.idle_timeout = idle_timeout
        self.name = processor.name
        self.max_attempts = processor.max_attempts or retry.max_attempts
        self.types = processor.types(store.registry)
        self.position = 0
        #: The tracker's committed position: every batch moves it by compare-and-set, so two
        #: instances (say, one whose lock session died unnoticed) never both commit a batch.
        self.saved_position = 0
        self.handled = 0
        self.state: str | None = None
        self.last_error: str | None = None
        self.ready = False
        #: Run the next batch with no queued writes, so that an error is raised under the
        #: event whose handler caused it (after a failed batch).
        self.unqueued = False
        #: The failed batch's error may have surfaced under a later event: redo it at once.
        self.redo_unqueued = False
        self.failure: _Failure | None = None
        self.unsaved = False
        self.saved_at = 0.0
        self.parked_checked_at = 0.0
        #: A reactor's batch may append: a write transaction it opens early says so first.
        self.may_append = isinstance(processor, Reactor)
        #: How many events of the batch being applied a prefix commit committed, and how
        #: many of them were handled; a TrackerError that prefix commit met.
        self.prefix_done = self.prefix_handled = 0
        self.fenced: TrackerError | None = None
        #: The parked rows among the page's events, read with the page (one round trip
        #: on PostgreSQL); used by the page's first batch transaction only.
        self.known_parked: dict[int, int] | None = None
        part = partition_of_processor(processor)
        #: The store's listening reader (PostgreSQL), when it has one: this worker waits and
        #: reads on a connection of its own, so a wake-up needs no other thread.
        self.own_reader = store.listening_reader() if feed is None else None
        self.ahead = _ReadAhead(store, self.types, processor.batch_size, self.name,
                                accept=event_filter(processor), feed=feed,
                                partition=None if part is None else (part.index, part.count),
                                own_reader=self.own_reader)

    # -- the loop ------------------------------------------------------------------------
    def run(self, *, once: bool) -> int:
        until: int | None = None
        try:
            while not self.stop.is_set():
                try:
                    if not self.ready:
                        self._start()
                        if once and until is None:
                            until = self.store.latest_position()
                    if self._step(until):
                        if once:
                            break
                        self._idle()
                except StoreUnavailableError as e:
                    self.ready = False
                    if not self._reconnect(e):
                        break
                except Exception as e:
                    self.ready = False
                    self._fail(e)
        finally:
            try:
                self.ahead.close()
            finally:
                if self.own_reader is not None:
                    self.own_reader.close()
        self._save_scan()
        self._report("stopped")
        return self.handled

    def _start(self) -> None:
        self.processor.setup(self.store)
        self.position = self.saved_position = self.store.get_tracker(self.name)
        self.ready = True
        self._retry_queued()

    def _step(self, until: int | None) -> bool:
        """Read and process one batch; True when caught up."""
        if not self._check_lock():
            return True  # stepped down: stop is set
        page, full, self.known_parked = self.ahead.read(self.position, until)
        if page.events:
            if full and self.ahead.enabled:
                self.ahead.start(page.end, until)  # catching up: read the next page meanwhile
            self._report("running")
            self._commit(page)
        elif page.end != self.position:
            self.position = page.end
            self.unsaved = True
            if time.monotonic() - self.saved_at >= SCAN_SAVE_INTERVAL:
                self._save_scan()
        return not full

    def _commit(self, page: Page) -> None:
        """Commit the batch; when an event fails, commit the events before it, then raise.

        A failure pinned on an event (a handler's own error, or any error of a batch run
        without queued writes) leaves the events before it committed with the tracker just
        before it, so the retry policy applies to the failing event alone.
        """
        events, end = page.events, page.end
        error: Exception | None = None
        while True:
            try:
                self._apply(events, end)
            except Exception as e:
                events = events[self.prefix_done:]  # committed by a reactor's prefix commit
                index = self._failing_index(e, events)
                if index is None:
                    raise
                error = e
                if index == 0:
                    raise
                events, end = events[:index], events[index - 1].id or 0
                continue
            if error is not None:
                raise error
            if self.on_batch is not None:
                self.on_batch(len(page.events))
            return

    def _failing_index(self, error: Exception, events: list[Event]) -> int | None:
        """Where in ``events`` the event ``error`` is pinned on fails; None when not pinned."""
        if self.redo_unqueued or not isinstance(error, ProcessingError):
            return None
        for index, event in enumerate(events):
            if event.uuid == error.event_uuid:
                return index
        return None

    def _apply(self, events: list[Event], end: int) -> None:
        """One batch transaction: skip parked events, handle the others, move the tracker.

        A reactor's batch may commit a prefix of itself early (:meth:`_commit_prefix`);
        ``prefix_done`` then says how many of ``events`` are committed already.
        """
        self.prefix_done = self.prefix_handled = 0
        known, self.known_parked = self.known_parked, None
        with self._transaction() as tx:
            try:
                # Read with the page when the store can (no round trip of its own here); a
                # batch run again after a failure looks afresh.
                skipped, retried = (split_parked(known, events) if known is not None
                                    else parked_in(tx, self.name, events))
                todo = [e for e in events if e.id not in skipped] if skipped else events
                # The tracker moves first in the write transaction: a fenced instance fails
                # there, before writing anything.
                tx.first(partial(self._move_tracker, end))
                if self.may_append and not self.unqueued:
                    tx.on_pending_read = partial(self._commit_prefix, events, skipped, retried)
                handled = self.processor.process_batch(todo, tx, self.store)
                for event_id in retried:
                    tx.delete("parked_events", where={"processor": self.name,
                                                      "event_id": event_id})
                # Holding the tracker's row now (the write transaction opens here if it is
                # not open yet: tracker first, then the recorded writes), look again: an
                # event skipped by hand while this batch ran must not be applied as well.
                tx.current()
                late, _ = parked_in(tx, self.name, todo)
                if late:
                    raise TrackerError(
                        f"{self.name}: event(s) {', '.join(map(str, sorted(late)))} were "
                        "skipped while this batch ran; it is processed again without them")
            except TrackerError:
                raise
            except Exception:
                fenced, self.fenced = self.fenced, None
                if fenced is not None:
                    raise fenced from None  # a prefix commit found the tracker moved
                # A queued write failed: the error may be pinned on a later event, so the
                # batch runs again with every write at once. A handler's own error is
                # pinned on its event already; the events before it commit as usual.
                self.unqueued = self.redo_unqueued = tx.flush_failed
                raise
        self.position = self.saved_position = end
        self.handled += handled - self.prefix_handled
        self.unsaved = False
        self.saved_at = time.monotonic()
        self.unqueued = False
        self.failure = None
        if skipped:
            log.info("%s skipped parked event(s) %s", self.name,
                     ", ".join(str(i) for i in sorted(skipped)))
        self._report("running", force=True)

    def _commit_prefix(self, events: list[Event], skipped: set[int], retried: set[int],
                       tx: BatchTransaction) -> bool:
        """A reactor's handler reads while earlier events' writes are recorded: commit those
        events now (rows, emitted events, tracker), so that the read and whatever the
        handler does next (send an e-mail) run outside any write transaction. False when
        the handler being run recorded writes itself: its read then opens the write
        transaction (flush on read)."""
        current = self.processor.current_event
        if current is None or tx.last_owner is current:
            return False
        index = next((i for i, e in enumerate(events) if e is current), 0)
        if index == 0:
            return False
        done, end = events[:index], events[index - 1].id or 0
        done_ids = {e.id for e in done}
        assert isinstance(self.processor, Reactor)
        emitted = self.processor.take_emitted(keep=current.uuid)

        def finish(final: BatchTransaction) -> None:
            append_new(emitted, final, self.store)
            for event_id in sorted(retried & done_ids):
                final.delete("parked_events", where={"processor": self.name,
                                                     "event_id": event_id})
            late, _ = parked_in(final, self.name, [e for e in done if e.id not in skipped])
            if late:
                raise TrackerError(
                    f"{self.name}: event(s) {', '.join(map(str, sorted(late)))} were "
                    "skipped while this batch ran; it is processed again without them")

        try:
            tx.commit_now(finish, first=partial(self._move_tracker, end),
                          appends=bool(emitted))
        except TrackerError as e:
            self.fenced = e
            raise
        retried -= done_ids
        self.position = self.saved_position = end
        counted = sum(1 for e in events[self.prefix_done:index] if e.id not in skipped)
        self.handled += counted
        self.prefix_handled += counted
        self.prefix_done = index
        return True

    def _move_tracker(self, end: int, tx: Transaction | Tables) -> None:
        tx.advance_tracker(self.name, self.saved_position, end)

    def _current_event(self) -> Event | None:
        return self.processor.current_event

    @contextmanager
    def _transaction(self) -> Iterator[BatchTransaction]:
        """The batch's transaction: handlers outside any write transaction, their writes
        sent at the end in one short one (``batching.py``); after a failed write, the
        store's transaction open throughout with every write at once, to pin the error."""
        if self.unqueued:
            with self.store.transaction() as raw:
                if self.may_append:
                    raw.will_append()  # before the tracker's move, its first write
                raw.relax_durability()
                yield BatchTransaction(raw, queue=False)
            return
        with BatchTransaction.outside(self.store, may_append=self.may_append,
                                      owner=self._current_event) as tx:
            tx.relax_durability()
            yield tx

    def _idle(self) -> None:
        self._report("idle")
        self._check_lock()
        waiter = self.store if self.own_reader is None else self.own_reader
        if waiter.wait(self.position, self.idle_timeout):
            return
        self._save_scan()
        if time.monotonic() - self.parked_checked_at >= PARKED_CHECK_INTERVAL:
            self._retry_queued()
        self._report("idle", force=True)

    # -- failures ------------------------------------------------------------------------
    def _fail(self, error: Exception) -> None:
        if isinstance(error, TrackerError):
            # The tracker was moved under this instance (an online rebuild swapped in, or a
            # reset): its batch was rolled back; carry on from the tracker, at once.
            log.info("%s: %s; carrying on from the tracker", self.name, error)
            self.unqueued = self.redo_unqueued = False
            return
        if self.redo_unqueued:
            # A queued write may have failed under a later event: redo the batch at once,
            # one statement at a time, so the error is pinned on the right event.
            self.redo_unqueued = False
            return
        self.last_error = str(error)
        attempts = self._count(error)
        log.warning("%s failed: %s", self.name, error, exc_info=log.isEnabledFor(logging.DEBUG))
        self._report("failing", self.last_error, force=True)
        if self.on_error is not None:
            self.on_error(error, self.name)
        failure = self.failure
        delay = self.policy.next_delay(error)
        if self.max_attempts is not None and failure is not None and (
            attempts >= self.max_attempts or delay is None  # "none" parks at once
        ):
            self._park(failure)
            return
        if delay is None:
            raise error
        log.info("%s retries in %g s", self.name, delay)
        self.policy.pause(delay, self.stop)

    def _park(self, failure: _Failure) -> None:
        """Park the failing event now, in its own transaction, moving the tracker onto it.

        The events before it are committed already (see :meth:`_commit`), so it is the next
        one to process: the tracker moves past it in the same transaction.
        """
        error = failure.error
        event_id = error.event_id or 0
        with self.store.transaction() as raw:
            tx = BatchTransaction(raw, queue=False)
            park(tx, self.name, error, attempts=failure.attempts,
                 first_failed_at=failure.first_failed_at, last_failed_at=failure.last_failed_at)
            tx.advance_tracker(self.name, self.saved_position, event_id)
        self.position = self.saved_position = event_id
        self.unsaved = False
        self.failure = None
        self.parked += 1
        log.warning("%s parks event %s after %d attempt(s)", self.name, event_id,
                    failure.attempts)
        self._report("parked", str(error), force=True)

    # -- a lost connection ---------------------------------------------------------------
    def _reconnect(self, error: StoreUnavailableError) -> bool:
        """Wait for the store with backoff and take the lock again; False to step down.

        Nothing is lost or doubled meanwhile: a batch that did not commit is processed
        again, and every batch moves the tracker by compare-and-set.
        """
        log.warning("%s lost its connection (%s); reconnecting", self.name, error)
        self._report("failing", f"{type(error).__name__}: {error}", force=True)
        delay, started = RECONNECT_DELAY, time.monotonic()
        while not self.stop.wait(delay):
            try:
                self.store.latest_position()
                if self.lock is not None and not self._retake_lock():
                    return False
            except StoreUnavailableError as e:
                log.debug("%s: still no connection: %s", self.name, e)
                delay = min(delay * 2, MAX_RECONNECT_DELAY)
                continue
            log.info("%s reconnected after %.2f s", self.name, time.monotonic() - started)
            return True
        return False

    def _retake_lock(self) -> bool:
        """Whether this instance holds its lock (taking it again if its session died)."""
        lock = self.lock
        assert lock is not None
        self.lock_checked_at = time.monotonic()
        if lock.check():
            return True
        if lock.try_acquire():
            log.info("%s took its lock again", self.name)
            return True
        log.warning("%s: another instance (%s) took the lock meanwhile; stepping down",
                    self.name, lock.holder() or "unknown")
        self.stepped_down = True
        self.stop.set()
        return False

    def _check_lock(self) -> bool:
        """False once this instance has stepped down (checked at most every second)."""
        if self.lock is None or time.monotonic() - self.lock_checked_at < LOCK_CHECK_INTERVAL:
            return not self.stepped_down
        return self._retake_lock()

    def _count(self, error: Exception) -> int:
        """Record a failure; returns how many times in a row its event has failed."""
        if not (isinstance(error, ProcessingError) and error.processor == self.name
                and error.event_id is not None):
            return 0
        now = self.policy.clock()
        previous = self.failure
        if previous is not None and previous.error.event_uuid == error.event_uuid:
            self.failure = _Failure(error, previous.attempts + 1, previous.first_failed_at, now)
        else:
            self.failure = _Failure(error, 1, now, now)
        return self.failure.attempts

    # -- bookkeeping ---------------------------------------------------------------------
    def _save_scan(self) -> None:
        if not self.unsaved or not self.ready:
            return
        with self.store.transaction() as tx:
            tx.relax_durability()
            tx.advance_tracker(self.name, self.saved_position, self.position)
        self.saved_position = self.position
        self.unsaved = False
        self.saved_at = time.monotonic()

    def _retry_queued(self) -> None:
        self.parked_checked_at = time.monotonic()
        outcome = process_parked(self.processor, self.store, on_error=self.on_error,
                                 clock=self.policy.clock)
        if outcome.succeeded or outcome.failed:
            log.info("%s retried parked events: %d went through, %d failed again",
                     self.name, outcome.succeeded, outcome.failed)

    def _report(self, state: str, error: str | None = None, *, force: bool = False) -> None:
        if state == self.state and not force:
            return
        self.state = state
        if error is not None:
            self.last_error = error
        elif state in ("running", "idle"):
            self.last_error = None
        if self.on_state is not None:
            self.on_state(state, self.position, self.last_error)


class _ReadAhead:
    """Where the worker's pages come from, reading the next one on a helper thread while
    the current one is being processed.

    Only reads: a page read ahead is used only if the loop asks for exactly that position,
    so a failed batch (which does not move the position) simply discards it. With
    ``feed`` (a runner's shared read, :mod:`esctl_lib.processing.fanout`) pages come from
    the feed while the worker is on it; ``accept`` keeps a partition's events only
    (:mod:`esctl_lib.processing.partitions`), unless the store reads only ``partition``'s
    events itself (``EventStore.partition_reads``). Each read returns the page and whether
    the scan filled its limit (more may follow: the worker is not caught up), and the parked
    rows among its events when the store read them with the page (a page read on the loop's
    own thread, so that they are as fresh as the read; else None).
    """

    def __init__(
        self, store: EventStore, types: list[str] | None, limit: int, name: str, *,
        accept: Callable[[Event], bool] | None = None, feed: FeedReader | None = None,
        partition: tuple[int, int] | None = None, own_reader: WorkerReader | None = None,
    ) -> None:
        self.store = store
        self.types = types
        self.limit = limit
        self.name = name
        self.accept = accept
        self.feed = feed
        #: The store's own reads take the partition (the server filters them, so ``accept``
        #: has nothing left to do on them), or nothing.
        self._partition: dict[str, Any] = {}
        if partition is not None and store.partition_reads:
            self._partition = {"partition": partition}
            self.accept = None
        self.enabled = store.remote_reads  # else the reader fights the writer for the GIL
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[int, int | None, Future[tuple[Page, bool]]] | None = None
        reader = getattr(store, "read_page_parked", None)
        self._with_parked: ReadsParked | None = (
            own_reader if own_reader is not None
            else store if reader is not None else None)  # type: ignore[assignment]

    def read(self, position: int, until: int | None) -> tuple[Page, bool, dict[int, int] | None]:
        pending, self._pending = self._pending, None
        if pending is not None:
            if pending[:2] == (position, until):
                return (*pending[2].result(), None)
            _discard(pending[2])
        with_parked = self._with_parked
        if with_parked is not None and until is None and self.feed is None:
            page, parked = with_parked.read_page_parked(position, self.name, types=self.types,
                                                        limit=self.limit, **self._partition)
            return (*self._filtered(page), parked)
        return (*self._read(position, until), None)

    def _read(self, position: int, until: int | None) -> tuple[Page, bool]:
        if self.feed is not None and until is None:
            return self.feed.read(self.store, position, types=self.types, limit=self.limit)
        return self._filtered(self.store.read_page(position, types=self.types,
                                                   limit=self.limit, until=until,
                                                   **self._partition))

    def _filtered(self, page: Page) -> tuple[Page, bool]:
        full = len(page.events) >= self.limit
        if self.accept is not None:
            page = Page([e for e in page.events if self.accept(e)], page.end)
        return page, full

    def start(self, position: int, until: int | None) -> None:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"esctl-read-{self.name}")
        future = self._pool.submit(self._read, position, until)
        self._pending = (position, until, future)

    def close(self) -> None:
        if self._pending is not None:
            _discard(self._pending[2])
            self._pending = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self.feed is not None:
            self.feed.close()


def _discard(future: Future[tuple[Page, bool]]) -> None:
    """Wait for a read nobody needs any more, ignoring its outcome."""
    future.exception()


def run_processor(
    processor: Processor,
    store: EventStore,
    *,
    stop: threading.Event,
    once: bool = False,
    retry: RetryPolicy | None = None,
    on_error: OnError | None = None,
    on_state: OnState | None = None,
    idle_timeout: float = 0.5,
    lock: ProcessorLock | None = None,
    feed: FeedReader | None = None,
) -> int:
    """Run one processor until ``stop`` is set (or, with ``once``, until the head as of now).

    Calls ``processor.setup(store)``, then processes batch after batch from its tracker.
    ``retry`` defaults to the processor's own ``retry`` or ``"constant"`` (see
    :func:`~esctl_lib.processing.retry.retry_policy_for` to apply a configured default).
    ``on_error(exception, processor_name)`` is called on every failure (with the
    :class:`ProcessingError`, whose ``__cause__`` is the handler's error).
    ``on_state(state, position, last_error)`` is called when the state changes between
    ``"running"``, ``"idle"``, ``"failing"``, ``"parked"`` and finally ``"stopped"``, after
    every committed batch, and every ``idle_timeout`` while idle (a heartbeat).
    With the ``"none"`` policy the first failure is raised (after being reported), unless
    ``max_attempts`` is set: then the event is parked at once. When an event fails, the
    events of its batch before it commit first. Returns how many events it parked.

    A lost connection (:class:`StoreUnavailableError`) is no failure of an event: the
    worker waits for the store with backoff (50 ms doubling to 2 s) and carries on from
    its tracker. With ``lock`` (the processor's lock, held), it also takes the lock again
    when its session died meanwhile, and stops (sets ``stop``) when another instance took
    it; it checks the lock every second meanwhile.
    """
    policy = retry if retry is not None else retry_policy(processor.retry or "constant")
    worker = _Worker(processor, store, stop=stop, retry=policy, on_error=on_error,
                     on_state=on_state, idle_timeout=idle_timeout, lock=lock, feed=feed)
    worker.run(once=once)
    return worker.parked


def process_available(
    processor: Processor, store: EventStore, *, retry: RetryPolicy | None = None
) -> int:
    """Process everything up to the current head, then return how many events were handled.

    Fails fast by default: the first handler error is raised as a ProcessingError.
    """
    worker = _Worker(processor, store, stop=threading.Event(), retry=retry or NoRetry(),
                     on_error=None, on_state=None, idle_timeout=0.0)
    return worker.run(once=True)


def replay(
    processor: Processor,
    store: EventStore,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Rebuild a processor online, into shadow tables swapped in at the head
    (:func:`~esctl_lib.processing.rebuild.rebuild`); the live projection serves reads
    meanwhile and is left as it was if the rebuild fails.

    ``progress(done, total)`` is called before the first batch and after each one.
    Returns how many events were handled; the first failure is raised.
    """
    from esctl_lib.processing.rebuild import rebuild

    return rebuild(processor, store, progress=progress).handled
