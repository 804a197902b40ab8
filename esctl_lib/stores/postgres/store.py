"""The PostgreSQL event store (psycopg 3): no global write lane, and no reader ever skips.

**Ordering.** A sequence value is taken at insert time but becomes visible at commit, so
id 11 can commit before id 10. Instead of a global lock that makes every write of the
database one lane (EventSourcery's ``pg_advisory_xact_lock``, ``LOCK TABLE … EXCLUSIVE`` in
the Python ``eventsourcing`` library), each event records its writing transaction
(``tx``, ``pg_current_xact_id()``), the stream is ordered by ``(tx, id)``, and readers only
see events below a horizon that no transaction can later commit an event in front of.
Filtering on the horizon while ordering by id alone would still skip; the order and the
tracker comparison use ``(tx, id)`` everywhere. Positions stay event ids: ``read_page``
turns a position into its ``(tx, id)`` key, and ``Page.end`` is always a real event id (or
the position given).

**The horizon counts only transactions that can still insert events here** (``horizon.py``
proves it): every appending transaction holds the store's shared *append lock*, taken
before it has a transaction id, and a reader that finds committed events beyond the cheap
bound (``pg_snapshot_xmin``, the oldest transaction in progress on the whole server) looks
at the lock's holders instead. So sessions in other databases, projector batches, the
application's writes to its own tables and psql sessions hold no reader back; a
transaction that holds the lock and has written does, until it ends (readers lag, nothing
is lost or reordered), and so, while one exists, does a prepared transaction holding the
lock. :meth:`PostgresStore.reader_horizon` names that blocker (pid, age, application,
state) and counts the committed events waiting behind it, for ``esctl status``; the
server ends a store connection left idle in a transaction after
``idle_in_transaction_timeout`` seconds. So that a process reads its own writes, a read
first waits up to ``own_writes_wait`` seconds for this process's newest append to become
readable (a short transaction elsewhere ends within milliseconds).

**Appends** are one statement and one round trip: the aggregate's version is read and the
events are inserted only if it matches (one event as plain parameters, a batch as one JSON
array parsed once by the server). A concurrent writer that read the same version loses on
the (aggregate_id, version) key and gets ``ConcurrencyError``, also for two first writes.

**Push.** A transaction that issues NOTIFY takes a database-wide lock at commit and holds
it through its WAL flush, so notifying writers commit one at a time. So an append notifies
in its own statement (listeners wake at its commit) only while the store is quiet
(``listen.CommitNotify``: this store object commits less than 500 times a second, and
the store's appends would hold that lock well under half the time; a notification the
server refuses sends the append again without it). Otherwise, and after a
transaction that appended, the writer raises a flag, and a per-process notifier thread
with its own connection sends one ``pg_notify`` for all commits made since its last one.
It notifies each commit at once while the process commits up to 500 times a second (a
listener wakes within two round trips: ``bench/push_latency.py``); a busier process gets
one notification per 25 ms, since each costs about as much as an append
(``bench/store_throughput.py`` prints both costs). Waiters ``LISTEN`` on a dedicated
connection per process (channel derived from the schema), treat a notification only as a
hint, poll every ``poll_interval`` seconds as a fallback, and replace a dead listener
connection. A processor's worker instead listens and reads on a connection of its own
(:meth:`listening_reader`): one more connection per worker, no thread between the
notification and its read.

**Connections** come from a ``psycopg_pool.ConnectionPool`` opened on first use; each has
``search_path`` set to the store's schema (so projectors' raw SQL lands there) and
``TimeZone`` UTC. Nothing with a socket crosses a fork: a store used in a new process opens
fresh connections and leaves the parent's alone. A store that cannot connect says why
(``pool.py``): at once as a :class:`ConfigError` when no retry can help (authentication, an
unknown database or role, a bad option), else as a :class:`StoreUnavailableError` within
``connect_timeout`` (refused, unknown host, timeout). Followers (:meth:`subscribe`) retry
a lost connection from their position.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from esctl_lib.errors import ConfigError, EsctlError, InvalidEventError, StoreError
from esctl_lib.events import Event, normalize_uuid
from esctl_lib.stores.base import (
    DEFAULT_PAGE_SIZE,
    EXACT_COUNT_LIMIT,
    CountEstimate,
    EventStore,
    Page,
    ReaderHorizon,
    Snapshot,
    SnapshotInfo,
    StreamKey,
    quote_identifier,
)
from esctl_lib.stores.dsn import dsn_secrets, mask_url
from esctl_lib.stores.locks import ProcessorLock
from esctl_lib.stores.postgres import snapshots
from esctl_lib.stores.postgres.append import append, current_version, existing
from esctl_lib.stores.postgres.errors import (
    DRIVER_ERRORS,
    is_undefined_table,
    translate,
    translate_errors,
)
from esctl_lib.stores.postgres.horizon import append_lock_key
from esctl_lib.stores.postgres.known_heads import KnownHeads
from esctl_lib.stores.postgres.lock import PostgresAdvisoryLock
from esctl_lib.stores.postgres.own_writes import OwnWrites, own_writes_registry
from esctl_lib.stores.postgres.pool import Checkout, Connections, quiet_pool_warnings
from esctl_lib.stores.postgres.reads import Reads
from esctl_lib.stores.postgres.tx import PostgresTransaction

if TYPE_CHECKING:  # imported where used: a one-shot read (esctl status) needs none of them
    from esctl_lib.stores.postgres.listen import CommitNotify, Listener, Notifier
    from esctl_lib.stores.postgres.listening_reader import ListeningReader
    from esctl_lib.stores.shadow import TableShadow

_SETUP_LOCK = 0x65736374  # advisory lock class for setup ("esct"), keyed by schema name
_ORPHANED: list[Any] = []  # a parent's pools seen after a fork: kept, never closed here


#: A new connection's session settings: the store's schema, UTC, the idle timeout.
CONFIGURE = (
    "SELECT set_config('search_path', %s, false), set_config('TimeZone', 'UTC', false), "
    "set_config('idle_in_transaction_session_timeout', %s, false)"
)


def configure_params(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any],
                     schema: str, idle_in_transaction_timeout: float) -> tuple[str, str]:
    """:data:`CONFIGURE`'s parameters for ``conn``: the quoted schema, the timeout in ms."""
    return (sql.Identifier(schema).as_string(conn),
            str(max(0, round(idle_in_transaction_timeout * 1000))))


def checked_schema(schema: str | None) -> str:
    """The store's schema name (``public`` when none), refused when it cannot be one."""
    name = schema or "public"
    try:
        quote_identifier(name)
    except ValueError as e:
        raise ConfigError(f"invalid PostgreSQL schema name: {e}") from e
    return name


class PostgresStore(EventStore):
    """An event store in PostgreSQL (``postgresql://user@host:port/db``), in ``schema``.

    ``schema`` (default ``public``) holds every table; ``pool_size`` caps the connections
    of the pool; ``connect_timeout`` bounds connecting and waiting for a connection;
    ``poll_interval`` is the fallback poll of :meth:`wait`; ``own_writes_wait`` bounds how
    long a read waits for this process's own appends to become readable (0: never);
    ``idle_in_transaction_timeout`` (seconds, 0: never) makes the server end a connection of
    this store left idle inside a transaction, which may hold the append lock and so hold
    every reader back (``horizon.py``);
    ``notify=False`` sends no notifications (bulk loads); ``notify_in_commit=False``
    leaves every notification to the notifier thread, even while the store is quiet
    (``listen.CommitNotify``); ``application_name`` labels the connections in
    ``pg_stat_activity``.
    """

    backend = "postgresql"
    remote_reads = True
    partition_reads = True

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int = 8,
        connect_timeout: float = 10.0,
        poll_interval: float = 1.0,
        own_writes_wait: float = 2.0,
        idle_in_transaction_timeout: float = 60.0,
        notify: bool = True,
        notify_in_commit: bool = True,
        application_name: str = "esctl",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.schema = checked_schema(schema)
        self.url = url
        self.display_url = mask_url(url)
        self.pool_size = max(2, pool_size)
        self.connect_timeout = connect_timeout
        self.poll_interval = poll_interval
        self.own_writes_wait = own_writes_wait
        self.idle_in_transaction_timeout = idle_in_transaction_timeout
        self.notify = notify
        self.notify_in_commit = notify and notify_in_commit
        self.application_name = application_name
        self.channel = channel_name(self.schema)
        #: The advisory-lock key every appending transaction holds (``horizon.py``).
        self.append_key = append_lock_key(self.schema)
        self._lock = threading.Lock()
        self._pid = 0
        self._conns: Connections | None = None
        self._listener: Listener | None = None
        self._notifier: Notifier | None = None
        self._commit_notify: CommitNotify | None = None
        self._closed = False
        self._reads = Reads(self)
        #: The aggregates' newest versions this object saw committed (``known_heads.py``).
        self.heads = KnownHeads()
        #: The newest event this process appended here, shared by every store of this
        #: process on the same database and schema (see ``own_writes.py``).
        self.own_writes: OwnWrites = own_writes_registry.for_database(url, self.schema)

    # -- connections ---------------------------------------------------------------------
    def _connect_kwargs(self, role: str, timeout: float | None = None) -> dict[str, Any]:
        return {
            "autocommit": True,
            "connect_timeout": max(1, round(timeout or self.connect_timeout)),
            "application_name": f"{self.application_name} {role}".strip(),
        }

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(CONFIGURE, configure_params(conn, self.schema,
                                                 self.idle_in_transaction_timeout))

    def _dedicated(self, role: str, timeout: float | None = None) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url, **self._connect_kwargs(role, timeout))
        try:
            self._configure(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _open(self) -> Connections:
        """The connections of this process, opening the pool on first use."""
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            if self._pid != os.getpid():
                self._forget_parent()
            if self._conns is None:
                pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
                    self.url, kwargs=self._connect_kwargs("pool"), min_size=1,
                    max_size=self.pool_size, configure=self._configure, open=False,
                    timeout=self.connect_timeout, name=f"esctl:{self.schema}",
                )
                quiet_pool_warnings()
                pool.open(wait=False)
                self._conns = Connections(
                    pool, keep=self.pool_size, timeout=self.connect_timeout,
                    connect=lambda timeout: self._dedicated("pool", timeout),
                    where=server_address(self.url), secrets=dsn_secrets(self.url),
                )
                self._pid = os.getpid()
            return self._conns

    def _forget_parent(self) -> None:
        """After a fork: drop (never close) the parent's pool and threads' connections."""
        _ORPHANED.extend(x for x in (self._conns, self._listener, self._notifier) if x)
        self._conns, self._listener, self._notifier = None, None, None
        self._commit_notify = None  # the parent's rates are not the child's
        self.own_writes = own_writes_registry.for_database(self.url, self.schema)
        self._pid = os.getpid()

    def connection(self) -> Checkout:
        """A pooled autocommit connection (as a context manager) with ``search_path`` set
        to the store's schema.

        When a connection turns out to be lost, the pool's other idle connections are
        checked too, so the call after a ``StoreUnavailableError`` gets a working one.
        """
        conns = self._conns
        if conns is None or self._pid != os.getpid():
            conns = self._open()
        return Checkout(conns)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, listener, notifier = self._conns, self._listener, self._notifier
            self._conns, self._listener, self._notifier = None, None, None
            same_process = self._pid == os.getpid()
        if not same_process:
            return
        for worker in (notifier, listener):
            if worker is not None:
                worker.close()
        if conns is not None:
            conns.close()

    # -- schema --------------------------------------------------------------------------
    def setup(self) -> list[str]:
        from esctl_lib.stores.schema_files import check_not_newer, latest_version, schema_files

        done: list[str] = []
        with self.connection() as conn, translate_errors(), conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                         (_SETUP_LOCK, self.schema))
            exists = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
                done.append(f"created schema {self.schema}")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at double precision NOT NULL)"
            )
            row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
            current = int(row[0]) if row else 0
            check_not_newer("postgresql", current)
            for f in schema_files("postgresql"):
                if f.version > current:
                    conn.execute(f.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_version (version, name, applied_at) "
                        "VALUES (%s, %s, %s)", (f.version, f.name, time.time()),
                    )
                    done.append(f"applied schema {f.version:03d}_{f.name}")
        if not done:
            done.append(f"schema is up to date (version {latest_version('postgresql')})")
        return done

    def schema_version(self) -> int:
        with self.connection() as conn:
            try:
                row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version")
                found = row.fetchone()
            except DRIVER_ERRORS as e:
                if is_undefined_table(e):
                    return 0
                raise translate(e) from e
        return int(found[0]) if found else 0

    # -- writing -------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        with self.connection() as conn:
            with translate_errors(), conn.transaction():
                tx = PostgresTransaction(self, conn)
                yield tx
            if tx.last_id:
                self._committed(tx.last_id)

    def append(self, events: Sequence[Event], *, expected_version: int | None = None) -> list[Event]:
        policy = self._policy()
        in_commit = policy is not None and policy.wanted()
        started = time.monotonic()
        try:
            stored = self._append(events, expected_version, in_commit)
        except EsctlError as e:
            from esctl_lib.stores.postgres.listen import notify_refused

            if policy is None or not in_commit or not notify_refused(e):
                raise
            policy.refused()  # nothing was written: send it again, to be notified after
            in_commit = False
            stored = self._append(events, expected_version, in_commit)
        last = stored[-1].id
        assert last is not None
        if policy is not None:
            policy.observe(last, len(stored), started, time.monotonic())
        if in_commit:
            self.own_writes.note(last)
        else:
            self._committed(last)
        return stored

    def _append(self, events: Sequence[Event], expected_version: int | None,
                in_commit: bool) -> list[Event]:
        with self.connection() as conn:
            return append(self, conn, events, expected_version, in_transaction=False,
                          notify=self.channel if in_commit else None)

    def _policy(self) -> CommitNotify | None:
        """The in-commit notify policy (``listen.CommitNotify``), made on first use; None
        when appends never notify in their statement."""
        if not self.notify_in_commit:
            return None
        policy = self._commit_notify
        if policy is None:
            from esctl_lib.stores.postgres.listen import CommitNotify

            with self._lock:
                policy = self._commit_notify
                if policy is None:
                    policy = self._commit_notify = CommitNotify()
        return policy

    def _committed(self, last_id: int) -> None:
        """After a commit that appended: remember it for our own reads, wake listeners."""
        self.own_writes.note(last_id)
        self._notify()

    def _notify(self) -> None:
        if not self.notify:
            return
        notifier = self._notifier
        if notifier is None or self._pid != os.getpid():
            self._open()
            with self._lock:
                if self._notifier is None:
                    from esctl_lib.stores.postgres.listen import Notifier

                    self._notifier = Notifier(lambda: self._dedicated("notify"), self.channel)
                notifier = self._notifier
        notifier.poke()

    # -- reading -------------------------------------------------------------------------
    def read_page(
        self,
        position: int,
        *,
        types: Collection[str] | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        until: int | None = None,
        partition: tuple[int, int] | None = None,
    ) -> Page:
        """See ``EventStore.read_page``; with ``partition=(index, count)``, only the events
        of that partition (filtered by the server: ``partition_reads``)."""
        return self._reads.page(position, types=types, limit=limit, until=until,
                                partition=partition)

    def read_page_parked(self, position: int, processor: str, *,
                         types: Collection[str] | None = None,
                         limit: int = DEFAULT_PAGE_SIZE,
                         partition: tuple[int, int] | None = None,
                         ) -> tuple[Page, dict[int, int]]:
        """``read_page(position, types=types, limit=limit, partition=partition)`` and
        ``processor``'s parked rows among its events (id -> attempts), read with the page:
        a worker's wake-up."""
        return self._reads.page_parked(position, processor, types=types, limit=limit,
                                       partition=partition)

    def listening_reader(self) -> ListeningReader:
        """A :class:`~esctl_lib.stores.postgres.listening_reader.ListeningReader`: ``wait``
        and ``read_page_parked`` on a connection of its own (one more connection, named
        ``<application_name> reader``), for one thread: a processor's worker, whose
        wake-ups then need no other thread. Close it when done."""
        from esctl_lib.stores.postgres.listening_reader import ListeningReader

        return ListeningReader(self, connect=lambda: self._dedicated("reader"),
                               closed=lambda: self._closed,
                               where=server_address(self.url), secrets=dsn_secrets(self.url))

    def read_aggregate(self, aggregate_id: Any, *, from_version: int = 1) -> list[Event]:
        agg = normalize_uuid(aggregate_id, "aggregate_id")
        events = self._reads.aggregate(agg, from_version)
        if events and (newest := events[-1].version):  # committed, the newest at the read
            self.heads.note(agg, newest)
        return events

    def aggregate_version(self, aggregate_id: Any) -> int:
        agg = normalize_uuid(aggregate_id, "aggregate_id")
        with self.connection() as conn:
            return current_version(conn, agg)

    def latest_position(self, *, types: Collection[str] | None = None) -> int:
        return self._reads.latest(types)

    def count(self, *, after: int = 0, types: Collection[str] | None = None) -> int:
        return self._reads.count(after, types)

    def estimate_count(self, *, after: int = 0, types: Collection[str] | None = None,
                       exact_up_to: int = EXACT_COUNT_LIMIT) -> CountEstimate:
        """Bounded index range scans in stream order (``stores/postgres/estimates.py``)."""
        from esctl_lib.stores.postgres.estimates import estimate_count

        return estimate_count(self, after, types, exact_up_to)

    def existing_uuids(self, uuids: Collection[str]) -> set[str]:
        valid = []
        for u in uuids:
            with suppress(InvalidEventError):  # not a uuid: cannot be stored
                valid.append(normalize_uuid(u, "uuid"))
        if not valid:
            return set()
        with self.connection() as conn:
            return existing(conn, valid)

    def find_events(
        self, *, ids: Collection[int] = (), uuids: Collection[str] = ()
    ) -> list[Event]:
        from esctl_lib.stores.postgres.trace import find_events

        return find_events(self, ids, uuids)

    def read_by_correlation(
        self, correlation_id: str, *, after: int = 0, limit: int = DEFAULT_PAGE_SIZE
    ) -> list[Event]:
        from esctl_lib.stores.postgres.trace import by_correlation

        return by_correlation(self, correlation_id, after, limit)

    def read_caused_by(
        self, uuids: Collection[str], *, after: int = 0, limit: int = DEFAULT_PAGE_SIZE
    ) -> list[Event]:
        from esctl_lib.stores.postgres.trace import caused_by

        return caused_by(self, uuids, after, limit)

    def stream_keys(self, positions: Collection[int]) -> dict[int, StreamKey]:
        """The ``(transaction, id)`` key of each position: that of the greatest event id
        at or below it (see :meth:`EventStore.stream_keys`)."""
        return self._reads.keys(positions)

    # -- snapshots (``postgres/snapshots.py``) ----------------------------------------------
    def save_snapshot(self, snapshot: Snapshot) -> None:
        snapshots.save(self, snapshot)

    def read_from_snapshot(
        self, aggregate_id: Any, aggregate_type: str, snapshot_version: int, *,
        tail: bool = True,
    ) -> tuple[Snapshot | None, list[Event]]:
        return snapshots.read_from_snapshot(self, aggregate_id, aggregate_type,
                                            snapshot_version, tail)

    def snapshots(self) -> list[SnapshotInfo]:
        return snapshots.infos(self)

    def drop_snapshots(self, aggregate_type: str | None = None) -> int:
        return snapshots.drop(self, aggregate_type)

    # -- capabilities ----------------------------------------------------------------------
    def reader_horizon(self) -> ReaderHorizon:
        """The oldest in-progress writing transaction, and how many events wait behind it."""
        return self._reads.horizon()

    def table_shadow(self, key: str, tables: Sequence[str]) -> TableShadow:
        """Shadow tables in a schema of their own (``stores/postgres/shadow.py``)."""
        from esctl_lib.stores.postgres.shadow import SchemaShadow

        return SchemaShadow(self.schema, key, tables)

    def processor_lock(self, name: str) -> ProcessorLock:
        """A session-level advisory lock on a dedicated connection (``postgres/lock.py``)."""
        return PostgresAdvisoryLock(self.url, self.schema, name, display_url=self.display_url,
                                    connect_timeout=self.connect_timeout)

    # -- waiting -------------------------------------------------------------------------
    def wait(self, position: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        listener = self._get_listener(timeout)
        # A read on this thread just found nothing after ``position``: wait for what was
        # notified since it began rather than look again (``Reads.caught_up``).
        seen = self._reads.caught_up(position, listener)
        while True:
            if seen is not None:
                generation, seen = seen, None
            else:
                generation = listener.generation
                if self._reads.readable_after(position):
                    return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            step = min(self.poll_interval, remaining)
            if listener.listening:
                if listener.wait_changed(generation, step):
                    return True
            else:
                time.sleep(min(step, 0.1))

    def _get_listener(self, timeout: float | None = None) -> Listener:
        self._open()
        with self._lock:
            created = self._listener is None
            if self._listener is None:
                from esctl_lib.stores.postgres.listen import Listener

                self._listener = Listener(lambda: self._dedicated("listen"), self.channel)
            listener = self._listener
        # The first wait gives the new listener up to connect_timeout to LISTEN; later
        # ones (the listener reconnecting, a server restarting) wait no longer than the
        # caller does: polling covers the rest, and a follower keeps checking its stop.
        patience = self.connect_timeout
        if timeout is not None and not created:
            patience = min(timeout, patience)
        listener.start(patience)
        return listener

    @property
    def listener_pid(self) -> int | None:
        """The backend pid of this process's LISTEN connection (None when not listening)."""
        return self._listener.backend_pid if self._listener is not None else None


def server_address(url: str) -> str:
    """``host:port`` of a DSN, for messages (its masked form when it does not parse)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        return mask_url(url)
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = str(params.get("port") or "5432")
    return f"{host}:{port}"


def channel_name(schema: str) -> str:
    """The NOTIFY channel of a store: derived from its schema, at most 63 bytes."""
    name = f"esctl_events_{schema}"
    if len(name.encode()) > 63:
        name = "esctl_events_" + hashlib.sha1(schema.encode()).hexdigest()[:20]
    return name
