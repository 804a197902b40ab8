"""Online rebuilds: a projection rebuilt beside the live one, swapped in atomically.

Blue/green, after Marten's projection rebuilds. :func:`rebuild` creates the processor's
tables as *shadow tables* (:meth:`EventStore.table_shadow`) and folds every event into
them from position 0, one transaction per batch, while the live tables keep serving
reads and, when a runner is up, keep being updated by it. When a read comes back short
(the shadow is at the head), that last batch, the swap and the tracker move commit in
one transaction: the live tables are dropped, the shadow tables take their names, the
processor's tracker is put at the shadow's position and its parked events are cleared.
A reader sees the old projection or the new one, never an empty or half-built table.

**Rule for handlers: refer to your tables by their declared names** (the keys of
``tables``), unqualified: ``tx.insert("query_todos", ...)``,
``tx.execute("UPDATE query_todos ...")``. During a rebuild those names mean the shadow
tables, for the helpers, raw SQL, queued writes and the DDL alike (PostgreSQL: a shadow
schema first on the rebuild transaction's ``search_path``; SQLite: the declared table and
index names are rewritten in each statement). The application keeps reading under the
usual names: nothing changes for it, before, during or after.

**The running instance.** The rebuild needs no processor lock: the live processor keeps
running. Its batches and the swap are serialized by the database (SQLite's write lock;
PostgreSQL: the swap takes the live tables' locks, waiting between the live batches), and
the tracker's compare-and-set fences the live instance: its first batch after the swap
finds the tracker moved, is rolled back, and it carries on from the shadow's position
(``worker.py`` reloads its tracker at once on a :class:`TrackerError`). Two rebuilds of
one processor never run together: each holds the ``<name>.rebuild`` lock.

**Failures.** A handler's error, a lost connection, Ctrl-C or a kill leave the live tables
and tracker as they were (nothing of the rebuild touches them before the swap commits);
the shadow tables are dropped (or, after a kill, by the next rebuild), and the outcome is
recorded in ``processor_rebuilds``: :func:`rebuild_state` reads it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from esctl_lib.errors import EsctlError, ProcessorLockedError
from esctl_lib.processing.rebuilds import (
    FAILED,
    INTERRUPTED,
    RECORDS,
    RUNNING,
    SUCCEEDED,
    RebuildState,
    ensure_records_table,
    rebuild_lock_name,
    rebuild_state,
)
from esctl_lib.processing.tables import Tables
from esctl_lib.stores.base import EventStore

if TYPE_CHECKING:  # the rebuild's own machinery; reading a record (esctl status) needs none
    from esctl_lib.processing.processor import Processor
    from esctl_lib.stores.base import Page, Transaction
    from esctl_lib.stores.shadow import TableShadow

log = logging.getLogger("esctl.processing")

#: The record's names live in ``rebuilds.py`` (read by ``esctl status``); kept importable here.
__all__ = ["FAILED", "INTERRUPTED", "RUNNING", "SUCCEEDED", "RebuildResult", "RebuildState",
           "ensure_records_table", "rebuild", "rebuild_lock_name", "rebuild_state"]

Progress = Callable[[int, int], None]
#: How long to wait before trying the swap again when the live tables were busy.
SWAP_RETRY_DELAY = 0.1


@dataclass(frozen=True, slots=True)
class RebuildResult:
    """What a finished rebuild did: events read and handled, the position it swapped in
    at, and how long it took (seconds)."""

    processor: str
    events: int
    handled: int
    position: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (for JSON)."""
        return asdict(self)


def rebuild(
    processor: Processor,
    store: EventStore,
    *,
    progress: Progress | None = None,
    on_swap: Callable[[], None] | None = None,
) -> RebuildResult:
    """Rebuild ``processor`` online (see the module docstring); returns what it did.

    ``progress(done, total)`` is called before the first batch and after each one: events
    read so far, and how many there are to read (it grows when new events arrive).
    ``on_swap()`` is called inside the swap's transaction just before it commits (a test
    hook: raising there, or dying, leaves the live projection as it was).
    The first error is raised (the rebuild is then recorded as failed);
    :class:`ProcessorLockedError` when another rebuild of it is running.
    """
    lock = store.processor_lock(rebuild_lock_name(processor.name))
    try:
        if not lock.try_acquire():
            raise ProcessorLockedError(
                f"a rebuild of {processor.name!r} is already running "
                f"({lock.holder() or 'elsewhere'})", processor=processor.name)
        return _Rebuild(processor, store, progress, on_swap).run()
    finally:
        lock.close()


class _Rebuild:
    def __init__(self, processor: Processor, store: EventStore, progress: Progress | None,
                 on_swap: Callable[[], None] | None) -> None:
        self.processor = processor
        self.store = store
        self.name = processor.name
        self.progress = progress
        self.on_swap = on_swap
        self.types = processor.types(store.registry)
        self.shadow: TableShadow = store.table_shadow(self.name, list(processor.tables))
        self.position = self.events = self.handled = self.total = 0
        self.started_at = time.time()
        self.started = time.monotonic()

    def run(self) -> RebuildResult:
        from esctl_lib.processing.partitions import rebuild_trackers

        ensure_records_table(self.store)
        self.trackers = rebuild_trackers(self.store, self.processor)
        self.total = self.store.count(types=self.types)
        with self.store.transaction() as tx:
            self._record(tx, RUNNING)
        try:
            with self.store.transaction() as tx:
                self.shadow.prepare(tx)
                self.processor.create_tables(self.shadow.redirect(tx))
            self._report()
            while not self._step():
                pass
        except BaseException as e:
            self._failed(e)
            raise
        log.debug("%s rebuilt: %d events read, %d handled, swapped in at position %d",
                 self.name, self.events, self.handled, self.position)
        return RebuildResult(self.name, self.events, self.handled, self.position,
                             time.monotonic() - self.started)

    def _step(self) -> bool:
        """One batch into the shadow tables, with the swap when it reaches the head;
        True once swapped in."""
        size = self.processor.batch_size
        page = self.store.read_page(self.position, types=self.types, limit=size)
        final = len(page.events) < size
        with self.store.transaction() as raw:
            if not final:
                raw.relax_durability()
            handled = self._handle(page, self.shadow.redirect(raw))
            swapped = final and self.shadow.swap_in(raw)
            if swapped:
                self._set_trackers(raw, page.end)
            self._record(raw, SUCCEEDED if swapped else RUNNING, page=page, handled=handled)
            if swapped and self.on_swap is not None:
                self.on_swap()
        self.position = page.end
        self.events += len(page.events)
        self.handled += handled
        self._report()
        if final and not swapped:
            log.debug("%s: the live tables are busy; trying the swap again", self.name)
            time.sleep(SWAP_RETRY_DELAY)
        return swapped

    def _set_trackers(self, raw: Transaction, position: int) -> None:
        """Put the tracker (a partitioned processor's: every partition's) at the shadow's
        position, clear their parked events, and drop trackers of another partition
        count (a replay is how that count changes)."""
        names, stale = self.trackers
        for name in names:
            raw.reset_tracker(name, position)
        for name in {*names, *stale}:
            Tables(raw).delete("parked_events", where={"processor": name})
        for name in stale:
            Tables(raw).delete("trackers", where={"name": name})

    def _handle(self, page: Page, tx: Transaction) -> int:
        from esctl_lib.processing.batching import BatchTransaction

        with BatchTransaction(tx) as batch:
            return self.processor.process_batch(page.events, batch, self.store)

    def _report(self) -> None:
        self.total = max(self.total, self.events)
        if self.progress is not None:
            self.progress(self.events, self.total)

    def _record(self, tx: Transaction, state: str, *, page: Page | None = None,
                handled: int = 0, error: str | None = None) -> None:
        now = time.time()
        done = state != RUNNING
        Tables(tx).upsert(RECORDS, {
            "processor": self.name, "state": state,
            "position": page.end if page is not None else self.position,
            "head": max(self.store.latest_position(), page.end if page else 0),
            "events": self.events + (len(page.events) if page else 0),
            "handled": self.handled + handled,
            "holder": f"pid {os.getpid()} on {socket.gethostname()}",
            "started_at": self.started_at, "updated_at": now,
            "finished_at": now if done else None, "error": error,
        }, key=("processor",))

    def _failed(self, error: BaseException) -> None:
        state = FAILED if isinstance(error, Exception) else INTERRUPTED
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        log.debug("%s: the rebuild %s: %s; the live projection is unchanged", self.name,
                    state, text)
        with suppress(EsctlError), self.store.transaction() as tx:
            self.shadow.discard(tx)
        with suppress(EsctlError), self.store.transaction() as tx:
            self._record(tx, state, error=text)


