"""The event store contract shared by every backend.

A store keeps events in one global stream. Positions are event ids. A backend may order
its stream by something finer than the id (PostgreSQL orders by writing transaction, then
id, so that no reader ever skips an event committed late), so the only ways to move along
the stream are :meth:`EventStore.read_page` and what is built on it: never ``id > n``.
Whether one position lies before another is asked of the store too:
:meth:`EventStore.stream_keys` gives keys that compare as the stream is ordered.

Everything that must commit together (projection rows, a tracker position, events a
reactor emits) goes through one :class:`Transaction` from :meth:`EventStore.transaction`.

What processing and operations need from a backend beyond that is asked of the store, never
guessed from its type: :meth:`EventStore.processor_lock`, :attr:`EventStore.remote_reads`,
:meth:`EventStore.reader_horizon`, :meth:`EventStore.table_shadow`,
:meth:`Transaction.relax_durability` and
:meth:`Transaction.sql_variant`. A new backend is one package beside ``sqlite/`` and
``postgres/`` that implements these two classes (``stores/sql.py`` has the tracker SQL),
calls :func:`~esctl_lib.serialization.validate_body` on what it appends, and gets a URL
scheme in :func:`esctl_lib.stores.open_store`. It imports nothing from processing,
operations, the application or its settings (``[tool.importlinter]`` checks).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

from esctl_lib.errors import (
    ConfigError,
    DuplicateEventError,
    InvalidEventError,
    StoreUnavailableError,
)
from esctl_lib.events import Event, EventRegistry, default_registry, normalize_uuid
from esctl_lib.serialization import BodyEncoder, default_encoder
from esctl_lib.stores.locks import ProcessorLock

if TYPE_CHECKING:
    from esctl_lib.stores.shadow import TableShadow

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 1000
#: A follower that lost its connection retries after this long, doubling up to the max.
RECONNECT_FIRST_DELAY = 0.05
RECONNECT_MAX_DELAY = 2.0
log = logging.getLogger("esctl.store")
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def quote_identifier(name: str) -> str:
    """Validate a table or column name and return it double-quoted."""
    if not _IDENTIFIER_RE.match(name):
        raise ValueError(f"invalid SQL identifier {name!r}: use letters, digits and underscores")
    return f'"{name}"'


class StreamKey(NamedTuple):
    """Where a position sits in the stream: keys compare as the stream is ordered.

    ``tx`` is what the backend orders by before the id (PostgreSQL: the writing
    transaction), 0 on a backend whose stream is in id order; ``id`` is the event id the
    key belongs to (0 before the first event).
    """

    tx: int
    id: int


@dataclass(frozen=True, slots=True)
class Page:
    """One read of the stream: matching ``events``, and ``end``, the position to resume from.

    ``end`` covers every event scanned, matching or not, so a reader of rare types moves on
    past the events it does not want.
    """

    events: list[Event]
    end: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One aggregate's folded state at ``version``: a cache, never the truth.

    ``aggregate_type`` names the aggregate class (``"module:QualName"``);
    ``snapshot_version`` is that class's ``snapshot_version`` when the state was taken;
    ``state`` is a JSON object (already encoded by the body encoder); ``created_at`` is
    a Unix time.
    """

    aggregate_id: str
    aggregate_type: str
    version: int
    snapshot_version: int
    state: dict[str, Any]
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """The snapshots of one aggregate type: how many, the newest's time, their size."""

    aggregate_type: str
    count: int
    newest: float
    bytes: int


class Transaction(ABC):
    """One atomic unit of work on a store: appends, tracker moves and raw SQL.

    This is the store contract and nothing more. Raw SQL (:meth:`execute`,
    :meth:`fetchall`) uses the backend's own parameter style, given by :attr:`placeholder`
    (``?`` on SQLite, ``%s`` on PostgreSQL). The portable table helpers projectors use
    (``insert``, ``upsert``, ``select`` ...) are a layer over this contract:
    :class:`esctl_lib.processing.tables.Tables`.
    """

    #: The SQL the backend speaks: "sqlite" (also the memory store's) or "postgresql".
    dialect: str = ""
    placeholder: str = "?"

    # -- raw SQL -------------------------------------------------------------------------
    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> int:
        """Run one statement; returns the number of rows it changed (or -1)."""

    @abstractmethod
    def executemany(self, sql: str, params: Sequence[Sequence[Any] | Mapping[str, Any]]) -> None:
        """Run one statement for each parameter set."""

    @abstractmethod
    def fetchall(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        """Run a query and return every row as a tuple."""

    @abstractmethod
    def fetch_dicts(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[dict[str, Any]]:
        """Run a query and return every row as a dict keyed by column name."""

    def fetchone(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> tuple[Any, ...] | None:
        """Run a query and return its first row, or None."""
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def sql_variant(self, variants: Mapping[str, T]) -> T | None:
        """The entry of ``variants`` (keyed "sqlite", "postgresql") for this backend's SQL,
        or None when it has none."""
        return variants.get(self.dialect)

    def relax_durability(self) -> None:
        """Let this transaction commit without waiting for its flush to disk, where the
        backend can (PostgreSQL: ``synchronous_commit`` off for it alone); else a no-op.

        A crash may then lose this transaction whole, never half of it.
        """

    def lock_schema_changes(self) -> None:
        """Make this transaction's DDL wait for any other transaction's that called it too,
        until that one ends, where concurrent DDL can fail (PostgreSQL: two ``CREATE TABLE
        IF NOT EXISTS`` of one name at once collide on the catalog); else a no-op (SQLite's
        one writer, memory)."""

    def will_append(self) -> None:
        """Declare, before this transaction's first write, that it may append events.

        A backend whose readers must know which open transactions can still insert events
        (PostgreSQL) registers this one here; elsewhere a no-op. ``append`` calls it itself,
        so only a transaction that writes something else *before* its first append needs
        to call it explicitly, and it must do so before that first write.
        """

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` as part of this transaction (see :meth:`EventStore.save_snapshot`).

        A failure raises a :class:`StoreError` and leaves the rest of the transaction
        usable (PostgreSQL wraps the write in a savepoint)."""
        raise ConfigError(f"no snapshots in a {type(self).__name__}")

    # -- store operations inside this transaction -----------------------------------------
    @abstractmethod
    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        """Append events of one aggregate as part of this transaction (see EventStore.append)."""

    @abstractmethod
    def get_tracker(self, name: str) -> int:
        """The tracker's position, 0 when it has none."""

    @abstractmethod
    def set_tracker(self, name: str, position: int) -> None:
        """Move a tracker forward; raises :class:`TrackerError` if that would move it back."""

    @abstractmethod
    def advance_tracker(self, name: str, expected: int, position: int) -> None:
        """Move a tracker from ``expected`` to ``position``, as a compare-and-set.

        Raises :class:`TrackerError` when the tracker is no longer at ``expected``: someone
        else (another instance of the processor, a reset) moved it, and this transaction
        must not commit its batch on top.
        """

    @abstractmethod
    def reset_tracker(self, name: str, position: int = 0) -> None:
        """Put a tracker at ``position`` (0 by default), forwards or backwards."""


@dataclass(frozen=True, slots=True)
class ReaderHorizon:
    """What holds readers back on a store whose readers may lag its commits (PostgreSQL):
    the oldest transaction in progress that has written.

    ``pending`` counts committed events that readers cannot see yet because of it.
    The other fields are None when no such transaction exists.
    """

    pending: int
    pid: int | None = None
    age_seconds: float | None = None
    application: str | None = None
    state: str | None = None
    database: str | None = None


@dataclass(frozen=True, slots=True)
class CountEstimate:
    """How many events lie after a position: ``count``, exact when ``exact`` is True, else
    an estimate from positions (never below the number actually seen)."""

    count: int
    exact: bool
    #: With an estimate, the events actually counted: a lower bound of the true count
    #: (more than the ``exact_up_to`` asked for, unless a type's scan stopped at its cap).
    #: None when ``count`` is exact.
    seen: int | None = None


#: ``EventStore.estimate_count`` counts exactly up to this many events by default.
EXACT_COUNT_LIMIT = 10_000


class ReadsParked(Protocol):
    """Reads a worker's page and its parked rows in one round trip (PostgreSQL's store
    and its :class:`WorkerReader`: ``read_page_parked``)."""

    def read_page_parked(self, position: int, processor: str, *,
                         types: Collection[str] | None = ...,
                         limit: int = ...,
                         partition: tuple[int, int] | None = ...,
                         ) -> tuple[Page, dict[int, int]]: ...


class WorkerReader(ReadsParked, Protocol):
    """One worker's waits and page reads on a connection of its own
    (:meth:`EventStore.listening_reader`)."""

    def wait(self, position: int, timeout: float) -> bool: ...

    def close(self) -> None: ...


class EventStore(ABC):
    """An append-only event store. Backends: memory, SQLite, PostgreSQL (see ``open_store``)."""

    #: The store's URL with any password masked; safe to print.
    display_url: str = ""
    #: The backend's name: "memory", "sqlite" or "postgresql".
    backend: str = ""
    #: True when reads wait on the network, so that reading the next page while a batch
    #: is being written pays off (on SQLite the reader would fight the writer for the GIL).
    remote_reads: bool = False
    #: True when ``read_page`` (and ``read_page_parked``) take ``partition=(index, count)``
    #: and return only that partition's events (:mod:`esctl_lib.processing.partitions`),
    #: filtered where the events are (PostgreSQL: by the server); else a partition's worker
    #: filters the pages it reads.
    partition_reads: bool = False

    def __init__(
        self,
        *,
        registry: EventRegistry | None = None,
        encoder: BodyEncoder | None = None,
    ) -> None:
        self.registry = registry or default_registry
        self.encoder = encoder or default_encoder

    # -- lifecycle -----------------------------------------------------------------------
    @abstractmethod
    def setup(self) -> list[str]:
        """Create or upgrade the schema; idempotent. Returns what it did, one line per step."""

    @abstractmethod
    def schema_version(self) -> int:
        """The schema version in the database (0 when not set up)."""

    def close(self) -> None:
        """Release connections and files. The store cannot be used afterwards."""

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- capabilities ----------------------------------------------------------------------
    def processor_lock(self, name: str) -> ProcessorLock:
        """A lock for processor ``name`` on this store's database, not yet acquired."""
        raise ConfigError(f"no processor lock for a {self.backend or type(self).__name__} store")

    def table_shadow(self, key: str, tables: Sequence[str]) -> TableShadow:
        """Shadow tables beside ``tables`` to rebuild them in and swap them in (an online
        rebuild of processor ``key``; see :mod:`esctl_lib.stores.shadow`)."""
        raise ConfigError(f"no online rebuild on a {self.backend or type(self).__name__} store")

    def reader_horizon(self) -> ReaderHorizon | None:
        """What keeps committed events unreadable for now, on a store where that can
        happen (PostgreSQL); None elsewhere."""
        return None

    def estimate_count(
        self,
        *,
        after: int = 0,
        types: Collection[str] | None = None,
        exact_up_to: int = EXACT_COUNT_LIMIT,
    ) -> CountEstimate:
        """:meth:`count`, in bounded time: exact while at most ``exact_up_to`` events (of
        ``types``) lie after ``after``; beyond that an estimate from positions (marked
        ``exact=False``), read from at most ``exact_up_to + 1`` matching entries per type.
        Neither SQL backend has a type index, so a type's scan of the stream also stops
        after ``max(100_000, 10 * (exact_up_to + 1))`` entries, and a type rarer than that
        is estimated from its density in them.

        This default counts exactly (the memory store); SQL backends bound the scan.
        """
        return CountEstimate(self.count(after=after, types=types), True)

    # -- writing -------------------------------------------------------------------------
    @abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """A write transaction: everything done through it commits together or not at all."""

    def read_transaction(self) -> AbstractContextManager[Transaction]:
        """A short transaction for queries only, holding no write lock and no transaction id.

        Processing runs a handler's reads in one while it holds no write transaction, so
        that a slow handler blocks no writer. Writing through it is not supported. The
        default is :meth:`transaction` (right where a transaction that only reads takes
        no lock and no id, as on PostgreSQL; the memory store holds its lock only while
        it is open); SQLite reads without ``BEGIN IMMEDIATE``.
        """
        return self.transaction()

    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        """Append events of one aggregate atomically; returns them with ids and versions.

        ``expected_version`` is the aggregate's version before these events (0 for a new
        aggregate); a mismatch raises :class:`ConcurrencyError` and writes nothing. ``None``
        appends without a check. A uuid already stored raises :class:`DuplicateEventError`.
        """
        with self.transaction() as tx:
            return tx.append(events, expected_version=expected_version)

    # -- reading -------------------------------------------------------------------------
    @abstractmethod
    def read_page(
        self,
        position: int,
        *,
        types: Collection[str] | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        until: int | None = None,
    ) -> Page:
        """Events after ``position`` in stream order (optionally of ``types``, at most ``limit``,
        none past ``until``), and the position the scan reached."""

    def read_after(
        self,
        position: int,
        *,
        types: Collection[str] | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
    ) -> list[Event]:
        """Events after ``position`` in stream order, optionally of ``types``, at most ``limit``."""
        return self.read_page(position, types=types, limit=limit).events

    @abstractmethod
    def read_aggregate(self, aggregate_id: Any, *, from_version: int = 1) -> list[Event]:
        """One aggregate's events in version order, starting at ``from_version``."""

    @abstractmethod
    def aggregate_version(self, aggregate_id: Any) -> int:
        """An aggregate's current version (0 when it has no events)."""

    @abstractmethod
    def latest_position(self, *, types: Collection[str] | None = None) -> int:
        """The position of the newest readable event (of ``types``), 0 when there is none."""

    @abstractmethod
    def count(
        self,
        *,
        after: int = 0,
        types: Collection[str] | None = None,
    ) -> int:
        """How many readable events lie after ``after`` (of ``types``)."""

    @abstractmethod
    def existing_uuids(self, uuids: Collection[str]) -> set[str]:
        """Which of these event uuids are already stored."""

    def read_by_uuids(self, uuids: Collection[str]) -> list[Event]:
        """The stored events with these uuids, in id order (so each aggregate's in version
        order); a uuid not stored, or not a uuid, is left out. No reader horizon applies:
        a committed event is found at once (idempotent commands look their events up so,
        :mod:`esctl_lib.idempotency`). The same read as ``find_events(uuids=...)``."""
        return self.find_events(uuids=uuids)

    def stream_keys(self, positions: Collection[int]) -> dict[int, StreamKey]:
        """The stream key of each of ``positions``, in one round trip: ``a`` lies before
        ``b`` in the stream exactly when ``keys[a] < keys[b]`` (never compare the ids).

        This default is id order, where every position is its own key (memory, SQLite).
        PostgreSQL orders by writing transaction, then id; there a position that is no
        stored event's id takes the key of the greatest event id below it (as
        :meth:`read_page` reads it), and ``keys[p].id != p`` says that ``p`` is no fixed
        place in the stream: an id not committed yet may take a key of its own later.
        """
        return {p: StreamKey(0, p) for p in positions}

    def stream_key(self, position: int) -> StreamKey:
        """The stream key of one position (see :meth:`stream_keys`)."""
        return self.stream_keys([position])[position]

    def oldest_time_after(
        self, position: int, *, types: Collection[str] | None = None
    ) -> dt.datetime | None:
        """``created_at`` of the first event after ``position`` (of ``types``), or None."""
        page = self.read_page(position, types=types, limit=1)
        return page.events[0].created_at if page.events else None

    def iter_range(
        self,
        after: int = 0,
        until: int | None = None,
        *,
        types: Collection[str] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[Event]:
        """Stream events after ``after`` up to and including ``until`` (default: the head now),
        page by page in constant memory. Never yields past ``until``, filtered or not."""
        if until is None:
            until = self.latest_position()
        position = after
        while True:
            page = self.read_page(position, types=types, limit=page_size, until=until)
            yield from page.events
            if page.end == position or len(page.events) < page_size:
                return
            position = page.end

    @abstractmethod
    def wait(self, position: int, timeout: float) -> bool:
        """Block until an event after ``position`` may be readable, or ``timeout`` seconds pass.

        Returns True when woken by a possible new event, False on timeout. A True may be a
        false alarm: callers read and wait again.
        """

    def listening_reader(self) -> WorkerReader | None:
        """A processor worker's own connection to wait and read its pages on, when the
        backend has one (PostgreSQL: no thread between a notification and its read);
        None: the worker uses :meth:`wait` and the store's reads."""
        return None

    def subscribe(
        self,
        position: int = 0,
        *,
        types: Collection[str] | None = None,
        batch_size: int = DEFAULT_PAGE_SIZE,
        stop: threading.Event | None = None,
        idle_timeout: float = 1.0,
        on_idle: Callable[[int], None] | None = None,
    ) -> Iterator[Page]:
        """Follow the stream from ``position`` for ever (or until ``stop`` is set).

        Yields non-empty pages; between pages the caller may do its work. When caught up,
        waits for new events, waking at least every ``idle_timeout`` seconds to check
        ``stop`` (and call ``on_idle`` with the current position).

        A lost connection does not end the follower: a read or wait that fails with
        :class:`StoreUnavailableError` (a server restart) is retried with a bounded
        backoff (up to ``RECONNECT_MAX_DELAY`` seconds between attempts, for as long as it
        takes) from the same position, so every event is still yielded once, in order.
        """
        reconnect = Reconnect(stop)
        while stop is None or not stop.is_set():
            try:
                page = self.read_page(position, types=types, limit=batch_size)
            except StoreUnavailableError as e:
                reconnect.failed(e)
                continue
            reconnect.succeeded()
            if page.events:
                yield page
            position = page.end
            if len(page.events) < batch_size:
                if on_idle is not None:
                    on_idle(position)
                if stop is not None and stop.is_set():
                    return
                try:
                    self.wait(position, idle_timeout)
                except StoreUnavailableError as e:
                    reconnect.failed(e)

    # -- causation and correlation (esctl trace) -----------------------------------------
    # These defaults scan the stream, so any backend has them; the backends override them
    # with reads on their correlation and causation indexes.
    def find_events(
        self, *, ids: Collection[int] = (), uuids: Collection[str] = ()
    ) -> list[Event]:
        """The stored events with these ids or uuids, in id order (missing ones left out;
        a string that is no UUID matches nothing)."""
        wanted_ids, wanted_uuids = set(ids), set(lower_uuids(uuids))
        if not wanted_ids and not wanted_uuids:
            return []
        found = [e for e in self.iter_range(0)
                 if e.id in wanted_ids or e.uuid in wanted_uuids]
        return sorted(found, key=_event_id)

    def read_by_correlation(
        self, correlation_id: str, *, after: int = 0, limit: int = DEFAULT_PAGE_SIZE
    ) -> list[Event]:
        """Events with this correlation id and an id above ``after``, in id order, at most
        ``limit`` (page through with ``after=`` the last id)."""
        wanted = lower_uuids([correlation_id])
        if not wanted:
            return []
        return self._scan_linked(lambda e: e.correlation_id == wanted[0], after, limit)

    def read_caused_by(
        self, uuids: Collection[str], *, after: int = 0, limit: int = DEFAULT_PAGE_SIZE
    ) -> list[Event]:
        """Events whose causation id is one of ``uuids`` and whose id is above ``after``, in
        id order, at most ``limit``."""
        wanted = set(lower_uuids(uuids))
        if not wanted:
            return []
        return self._scan_linked(lambda e: e.causation_id in wanted, after, limit)

    def _scan_linked(self, match: Callable[[Event], bool], after: int, limit: int) -> list[Event]:
        found = sorted((e for e in self.iter_range(0) if (e.id or 0) > after and match(e)),
                       key=_event_id)
        return found[:limit]

    # -- snapshots -----------------------------------------------------------------------
    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` as its aggregate's newest (one per aggregate id and type).

        An existing snapshot is replaced when the new one covers a later version or has
        another ``snapshot_version``; an older one never replaces a newer one (writers may
        race: each snapshot is true at its version). :class:`SchemaError` on a store whose
        schema has no snapshots yet (run ``esctl setup``)."""
        with self.transaction() as tx:
            tx.save_snapshot(snapshot)

    def load_snapshot(
        self, aggregate_id: Any, aggregate_type: str, snapshot_version: int
    ) -> Snapshot | None:
        """The aggregate's snapshot of ``snapshot_version``, or None (none of that version,
        or a store whose schema has no snapshots yet)."""
        return self.read_from_snapshot(aggregate_id, aggregate_type, snapshot_version,
                                       tail=False)[0]

    def read_from_snapshot(
        self, aggregate_id: Any, aggregate_type: str, snapshot_version: int, *,
        tail: bool = True,
    ) -> tuple[Snapshot | None, list[Event]]:
        """The aggregate's snapshot of ``snapshot_version`` (or None) and, with ``tail``,
        its events after the version the snapshot covers (all of them without a
        snapshot), in version order: one round trip where the backend can."""
        raise ConfigError(f"no snapshots on a {self.backend or type(self).__name__} store")

    def snapshots(self) -> list[SnapshotInfo]:
        """The snapshots kept, per aggregate type (sorted by type); empty on a store whose
        schema has no snapshots yet."""
        raise ConfigError(f"no snapshots on a {self.backend or type(self).__name__} store")

    def drop_snapshots(self, aggregate_type: str | None = None) -> int:
        """Discard the snapshots of ``aggregate_type`` (every one with None); returns how
        many. Loads then fold whole histories until new snapshots are taken."""
        raise ConfigError(f"no snapshots on a {self.backend or type(self).__name__} store")

    # -- trackers ------------------------------------------------------------------------
    def get_tracker(self, name: str) -> int:
        """A processor's tracker position (0 when it has none)."""
        with self.transaction() as tx:
            return tx.get_tracker(name)

    def set_tracker(self, name: str, position: int) -> None:
        """Move a tracker forward (never back; see :meth:`reset_tracker`)."""
        with self.transaction() as tx:
            tx.set_tracker(name, position)

    def reset_tracker(self, name: str, position: int = 0) -> None:
        """Put a tracker at ``position``, forwards or backwards."""
        with self.transaction() as tx:
            tx.reset_tracker(name, position)

    def trackers(self) -> dict[str, int]:
        """Every tracker and its position."""
        with self.transaction() as tx:
            rows = tx.fetchall("SELECT name, position FROM trackers ORDER BY name")
        return {str(name): int(pos) for name, pos in rows}


#: Event ids are 64-bit: a larger number is no stored event's id.
MAX_EVENT_ID = 2**63 - 1


def event_ids(values: Collection[int]) -> list[int]:
    """The values that can be event ids (1 up to :data:`MAX_EVENT_ID`); others match nothing."""
    return [int(v) for v in values if 0 < int(v) <= MAX_EVENT_ID]


def lower_uuids(values: Collection[str]) -> list[str]:
    """The canonical form of each value that is a UUID (the others can match nothing)."""
    out = []
    for value in values:
        try:
            out.append(normalize_uuid(value, "uuid"))
        except InvalidEventError:
            continue
    return out


def _event_id(event: Event) -> int:
    return event.id or 0


class Reconnect:
    """The backoff of a follower whose store became unavailable (see
    :meth:`EventStore.subscribe`): waits between attempts, returning early when ``stop``
    is set."""

    def __init__(self, stop: threading.Event | None = None, *,
                 first_delay: float = RECONNECT_FIRST_DELAY,
                 max_delay: float = RECONNECT_MAX_DELAY) -> None:
        self.stop = stop
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.delay = 0.0

    def failed(self, error: StoreUnavailableError) -> None:
        """An attempt failed: wait before the next one (longer each time, bounded)."""
        self.delay = min(self.max_delay, self.delay * 2 if self.delay else self.first_delay)
        log.debug("store unavailable (%s); retrying in %.2f s", error, self.delay)
        if self.stop is not None:
            self.stop.wait(self.delay)
        else:
            time.sleep(self.delay)

    def succeeded(self) -> None:
        """An attempt worked: the next failure starts the backoff afresh."""
        self.delay = 0.0


def check_one_aggregate(events: Sequence[Event]) -> str:
    """The single aggregate id of an append; raises if there are none or several, or when
    one uuid appears twice (:class:`DuplicateEventError` naming it)."""
    if not events:
        raise InvalidEventError("nothing to append: no events given")
    first = events[0].aggregate_id
    seen: set[str] = set()
    for event in events:
        if not isinstance(event, Event):
            raise InvalidEventError(f"not an Event: {event!r}")
        if event.aggregate_id != first:
            raise InvalidEventError(
                "one append may only hold events of one aggregate "
                f"(got {first} and {event.aggregate_id})"
            )
        if event.uuid in seen:
            raise DuplicateEventError(event.uuid)
        seen.add(event.uuid)
    return normalize_uuid(first, "aggregate_id")


def check_expected_version(expected_version: int | None) -> None:
    """Reject a negative or non-integer expected version."""
    if expected_version is not None and (
        not isinstance(expected_version, int) or expected_version < 0
    ):
        raise InvalidEventError(
            f"expected_version must be a whole number >= 0, got {expected_version!r}"
        )
