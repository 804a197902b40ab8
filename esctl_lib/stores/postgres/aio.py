"""The async PostgreSQL store: psycopg's ``AsyncConnectionPool``, the sync store's rules.

Everything that decides *what* is read or written is the sync store's and is imported,
not copied: the append statements and their encoding (``append.Batch``), the stream-order
queries and the readable horizon (``reads``, ``stream``), decoding (``decode_rows``), the
error translation (``errors``) and read-your-own-writes (``own_writes``: shared with
every sync store of the process on the same schema). This module only says *how*: on an
async connection. Waiting listens on a dedicated async connection
(``aio_listen.AsyncListener``) and polls every ``poll_interval`` seconds as a fallback, as
the sync store does. An append notifies in its own statement while the store is quiet
(``listen.CommitNotify``, as on the sync store); otherwise it pokes
``aio_listen.AsyncNotifier``, a task on its own connection paced like the sync notifier
but with a lower rate before it batches (100 a second, not 500), since its round trips
share the loop with the appends (``bench/async_store.py``: every-commit notifies cost the
async W1 a third of its rate).

The pool belongs to the event loop that first used the store; use one store per loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from esctl_lib.errors import (
    ConcurrencyError,
    DuplicateEventError,
    EsctlError,
    StoreError,
)
from esctl_lib.events import Event, EventRegistry, default_registry, normalize_uuid
from esctl_lib.serialization import BodyEncoder, default_encoder
from esctl_lib.stores.aio_base import AsyncEventStore
from esctl_lib.stores.base import (
    DEFAULT_PAGE_SIZE,
    Page,
    StreamKey,
    check_expected_version,
    lower_uuids,
)
from esctl_lib.stores.dsn import dsn_secrets, mask_url
from esctl_lib.stores.postgres.aio_listen import AsyncListener, AsyncNotifier
from esctl_lib.stores.postgres.append import (
    AGGREGATE_VERSION,
    EXISTING_UUIDS,
    UNCHECKED_RETRIES,
    Batch,
)
from esctl_lib.stores.postgres.decode import decode_rows
from esctl_lib.stores.postgres.errors import (
    UUID_CONSTRAINT,
    VERSION_CONSTRAINT,
    TranslateErrors,
    connect_error,
    translate,
    translate_errors,
)
from esctl_lib.stores.postgres.horizon import append_lock_key, state_of
from esctl_lib.stores.postgres.known_heads import KnownHeads
from esctl_lib.stores.postgres.listen import CommitNotify, notify_refused
from esctl_lib.stores.postgres.own_writes import OwnWrites, own_writes_registry
from esctl_lib.stores.postgres.reads import (
    AGGREGATE,
    BOUNDS,
    COUNT,
    COUNT_TYPES,
    KEYS,
    LATEST,
    OWN_READABLE,
    READ_ALL,
    READ_RANGE,
    READABLE_AFTER,
    START,
    latest_of_types_query,
    range_params,
    read_types_query,
    sentinel_behind,
    type_params,
    without_sentinel,
)
from esctl_lib.stores.postgres.store import (
    CONFIGURE,
    PostgresStore,
    channel_name,
    checked_schema,
    configure_params,
    server_address,
)
from esctl_lib.stores.postgres.trace import BY_UUIDS

GET_TRACKER = "SELECT position FROM trackers WHERE name = %s"
Query = str | sql.Composed


class _UniqueConflict(StoreError):
    """Carries a unique violation on the append's own constraints out of the translation,
    to be named with async queries (never escapes this module)."""

    def __init__(self, constraint: str) -> None:
        super().__init__(constraint)
        self.constraint = constraint


def _unique(constraint: str | None) -> EsctlError | None:
    if constraint in (UUID_CONSTRAINT, VERSION_CONSTRAINT):
        return _UniqueConflict(constraint)
    return None


_APPEND_ERRORS = TranslateErrors(_unique)


class AsyncPostgresStore(AsyncEventStore):
    """``open_async_store("postgresql://…")``: the arguments of :class:`PostgresStore`."""

    backend = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int = 8,
        connect_timeout: float = 10.0,
        idle_in_transaction_timeout: float = 60.0,
        poll_interval: float = 1.0,
        own_writes_wait: float = 2.0,
        notify: bool = True,
        notify_in_commit: bool = True,
        application_name: str = "esctl",
        registry: EventRegistry | None = None,
        encoder: BodyEncoder | None = None,
    ) -> None:
        self.schema = checked_schema(schema)
        self.url = url
        self.display_url = mask_url(url)
        self.registry = registry or default_registry
        self.encoder = encoder or default_encoder
        self.pool_size = max(2, pool_size)
        self.connect_timeout = connect_timeout
        #: Seconds a session of this store may sit idle inside a transaction (one opened on
        #: :meth:`connection`) before the server ends it, as on the sync store; 0: never.
        self.idle_in_transaction_timeout = idle_in_transaction_timeout
        self.poll_interval = poll_interval
        self.own_writes_wait = own_writes_wait
        self.notify = notify
        self.notify_in_commit = notify and notify_in_commit
        self.application_name = application_name
        self.channel = channel_name(self.schema)
        #: The append lock every append takes in its statement, as the sync store's do
        #: (``horizon.py``): readers' bound counts on it.
        self.append_key = append_lock_key(self.schema)
        self.own_writes: OwnWrites = own_writes_registry.for_database(url, self.schema)
        #: The aggregates' newest versions this object saw committed (``known_heads.py``).
        self.heads = KnownHeads()
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._pool_lock = asyncio.Lock()
        self._listener: AsyncListener | None = None
        self._notifier: AsyncNotifier | None = None
        self._commit_notify = CommitNotify() if self.notify_in_commit else None
        self._sync: PostgresStore | None = None
        self._closed = False

    @property
    def sync(self) -> PostgresStore:
        if self._sync is None:
            self._sync = PostgresStore(
                self.url, schema=self.schema, pool_size=self.pool_size,
                connect_timeout=self.connect_timeout,
                idle_in_transaction_timeout=self.idle_in_transaction_timeout,
                poll_interval=self.poll_interval,
                own_writes_wait=self.own_writes_wait, notify=self.notify,
                notify_in_commit=self.notify_in_commit,
                application_name=self.application_name, registry=self.registry,
                encoder=self.encoder,
            )
        return self._sync

    # -- connections ---------------------------------------------------------------------
    def _connect_kwargs(self, role: str) -> dict[str, Any]:
        return {
            "autocommit": True,
            "connect_timeout": max(1, round(self.connect_timeout)),
            "application_name": f"{self.application_name} {role}".strip(),
        }

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(CONFIGURE, configure_params(conn, self.schema,
                                                       self.idle_in_transaction_timeout))

    async def _dedicated(self, role: str) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(self.url, **self._connect_kwargs(role))
        try:
            await self._configure(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _get_pool(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._closed:
                raise StoreError("the store is closed")
            if self._pool is None:
                pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
                    self.url, kwargs=self._connect_kwargs("aio"), min_size=1,
                    max_size=self.pool_size, configure=self._configure, open=False,
                    timeout=self.connect_timeout, name=f"esctl-aio:{self.schema}",
                )
                await pool.open(wait=False)
                self._pool = pool
            return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled autocommit async connection with ``search_path`` set to the schema."""
        pool = await self._get_pool()
        try:
            async with pool.connection() as conn:
                yield conn
        except PoolTimeout as e:
            raise await self._why_no_connection(e) from e

    async def _why_no_connection(self, e: PoolTimeout) -> EsctlError:
        """The pool gave no connection in time: connect once directly to learn why."""
        try:
            conn = await psycopg.AsyncConnection.connect(self.url, **self._connect_kwargs("probe"))
        except psycopg.Error as cause:
            return connect_error(cause, server_address(self.url), dsn_secrets(self.url))
        await conn.close()
        return translate(e)

    async def _rows(self, query: Query, params: Any = None) -> list[Any]:
        async with self.connection() as conn:
            with translate_errors():
                cur = await conn.execute(query, params)
                return await cur.fetchall()

    async def _bounded(
        self, query: Query, params: dict[str, Any], *,
        behind: Callable[[list[Any]], bool] | None = None,
    ) -> list[Any]:
        """The sync store's ``Reads._bounded``: a horizon-bound read that reports
        ``BEHIND`` (first column, or as ``behind`` finds it); when true, refresh the
        connection's bound (``horizon.py``) and, if it moved, read again (once)."""
        async with self.connection() as conn:
            with translate_errors():
                state = state_of(conn)
                cur = await conn.execute(query, {**params, **state.params()})
                rows = await cur.fetchall()
                late = behind(rows) if behind is not None else bool(rows[0][0])
                if late and await state.refresh_async(conn, self.append_key):
                    cur = await conn.execute(query, {**params, **state.params()})
                    rows = await cur.fetchall()
                return rows

    async def close(self) -> None:
        self._closed = True
        pool, listener, notifier, sync = self._pool, self._listener, self._notifier, self._sync
        self._pool, self._listener, self._notifier, self._sync = None, None, None, None
        if listener is not None:
            await listener.close()
        if notifier is not None:
            await notifier.close()
        if pool is not None:
            await pool.close()
        if sync is not None:
            await asyncio.to_thread(sync.close)

    # -- schema: rare, administrative, done by the sync store on a thread ------------------
    async def setup(self) -> list[str]:
        return await asyncio.to_thread(self.sync.setup)

    async def schema_version(self) -> int:
        return await asyncio.to_thread(self.sync.schema_version)

    # -- writing -------------------------------------------------------------------------
    async def append(
        self, events: Sequence[Event], *, expected_version: int | None = None
    ) -> list[Event]:
        check_expected_version(expected_version)
        batch = Batch(events, self.encoder)
        policy = self._commit_notify
        notify = self.channel if policy is not None and policy.wanted() else None
        started = time.monotonic()
        try:
            stored = await self._append_batch(batch, expected_version, notify)
        except EsctlError as e:
            if policy is None or notify is None or not notify_refused(e):
                raise
            policy.refused()  # nothing was written: send it again, to be notified after
            notify = None
            stored = await self._append_batch(batch, expected_version, notify)
        last = stored[-1].id
        assert last is not None
        if policy is not None:
            policy.observe(last, len(stored), started, time.monotonic())
        self.own_writes.note(last)
        if notify is None:
            self._poke()
        return stored

    async def _append_batch(self, batch: Batch, expected_version: int | None,
                            notify: str | None) -> list[Event]:
        async with self.connection() as conn:
            if expected_version is not None:
                return await self._append_at(conn, batch, expected_version, notify)
            return await self._append_unchecked(conn, batch, notify)

    async def _append_unchecked(
        self, conn: psycopg.AsyncConnection[Any], batch: Batch, notify: str | None
    ) -> list[Event]:
        for _attempt in range(UNCHECKED_RETRIES):
            try:
                return await self._append_at(
                    conn, batch, await _version(conn, batch.aggregate_id), notify)
            except ConcurrencyError:
                pass
        return await self._append_at(conn, batch, await _version(conn, batch.aggregate_id),
                                     notify)

    async def _append_at(
        self, conn: psycopg.AsyncConnection[Any], batch: Batch, base: int, notify: str | None
    ) -> list[Event]:
        agg, heads = batch.aggregate_id, self.heads
        known = heads.at(agg, base)  # as the sync store: ``known_heads.py``
        query, params = batch.statement(base, self.append_key, notify, known)
        try:
            with _APPEND_ERRORS:
                rows = await (await conn.execute(query, params)).fetchall()
        except BaseException as e:
            heads.forget(agg)
            if isinstance(e, _UniqueConflict):
                raise await self._conflict(conn, batch, base, e.constraint,
                                           known) from e.__cause__
            raise
        if not rows:
            actual = await _version(conn, agg)
            if actual:
                heads.note(agg, actual)
            raise ConcurrencyError(agg, base, actual)
        if len(rows) > 1:
            rows.sort()
        heads.note(agg, base + len(rows))
        return batch.stored([r[0] for r in rows], base + 1)

    async def _conflict(
        self, conn: psycopg.AsyncConnection[Any], batch: Batch, base: int, constraint: str,
        known: bool,
    ) -> EsctlError:
        """Name a unique violation as the sync store does (the connection is autocommit,
        so still usable after the failed statement); after an append that did not read
        the version (``known``), a taken uuid is named only if the version was right."""
        if constraint == VERSION_CONSTRAINT or known:
            actual = await _version(conn, batch.aggregate_id)
            if constraint == VERSION_CONSTRAINT or actual != base:
                return ConcurrencyError(batch.aggregate_id, base, actual)
        with translate_errors():
            cur = await conn.execute(EXISTING_UUIDS, ([r[0] for r in batch.rows],))
            taken = {r[0] for r in await cur.fetchall()}
        return DuplicateEventError(min(taken) if taken else None)

    def _poke(self) -> None:
        """Ask the notifier thread for a NOTIFY soon (no I/O on the loop)."""
        if not self.notify:
            return
        if self._notifier is None:
            self._notifier = AsyncNotifier(lambda: self._dedicated("notify"), self.channel)
        self._notifier.poke()

    # -- reading -------------------------------------------------------------------------
    async def _wait_for_own_writes(self) -> None:
        """Read your own writes (see ``Reads.wait_for_own_writes``), sleeping on the loop."""
        newest = self.own_writes.newest
        if not newest:
            return
        deadline = time.monotonic() + self.own_writes_wait
        delay = 0.001
        while not (await self._bounded(OWN_READABLE, {"id": newest}))[0][1]:
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        self.own_writes.forget(newest)

    async def read_page(
        self, position: int, *, types: Collection[str] | None = None,
        limit: int = DEFAULT_PAGE_SIZE, until: int | None = None,
    ) -> Page:
        """The sync store's ``Reads.page``, query for query."""
        await self._wait_for_own_writes()
        if types is None and until is None:
            rows = await self._bounded(READ_ALL, {"p": position, "n": limit},
                                       behind=sentinel_behind)
            events = self._decode(without_sentinel(rows))
            return Page(events, _last_id(events) if events else position)
        params = range_params((await self._bounded(BOUNDS, {"p": position, "u": until}))[0],
                              until, limit)
        if params is None:
            return Page([], position)
        if types is None:
            rows = await self._rows(READ_RANGE, params)
        else:
            type_list = list(types)
            if not type_list:
                return Page([], params["bid"])
            rows = await self._rows(read_types_query(len(type_list)),
                                    {**params, **type_params(type_list)})
        events = self._decode(rows)
        full = len(events) >= limit
        return Page(events, _last_id(events) if full else params["bid"])

    def _decode(self, rows: list[tuple[Any, ...]]) -> list[Event]:
        return decode_rows(self.registry, rows)

    async def read_aggregate(self, aggregate_id: Any, *, from_version: int = 1) -> list[Event]:
        agg = normalize_uuid(aggregate_id, "aggregate_id")
        events = self._decode(await self._rows(AGGREGATE, (agg, from_version)))
        if events and (newest := events[-1].version):  # committed, the newest at the read
            self.heads.note(agg, newest)
        return events

    async def aggregate_version(self, aggregate_id: Any) -> int:
        agg = normalize_uuid(aggregate_id, "aggregate_id")
        async with self.connection() as conn:
            return await _version(conn, agg)

    async def latest_position(self, *, types: Collection[str] | None = None) -> int:
        await self._wait_for_own_writes()
        if types is None:
            rows = await self._bounded(LATEST, {})
        else:
            type_list = list(types)
            if not type_list:
                return 0
            rows = await self._bounded(latest_of_types_query(len(type_list)),
                                       type_params(type_list))
        found = rows[0][1] if rows else None
        return int(found) if found is not None else 0

    async def count(self, *, after: int = 0, types: Collection[str] | None = None) -> int:
        await self._wait_for_own_writes()
        if types is None:
            return int((await self._bounded(COUNT, {"p": after}))[0][1])
        type_list = list(types)
        if not type_list:
            return 0
        return int((await self._bounded(COUNT_TYPES, {"p": after, "types": type_list}))[0][1])

    async def existing_uuids(self, uuids: Collection[str]) -> set[str]:
        valid = lower_uuids(uuids)
        if not valid:
            return set()
        return {r[0] for r in await self._rows(EXISTING_UUIDS, (valid,))}

    async def read_by_uuids(self, uuids: Collection[str]) -> list[Event]:
        valid = lower_uuids(uuids)
        if not valid:
            return []
        return self._decode(await self._rows(BY_UUIDS, (valid,)))

    async def stream_keys(self, positions: Collection[int]) -> dict[int, StreamKey]:
        wanted = sorted({int(p) for p in positions})
        if not wanted:
            return {}
        return {int(pos): _key(tx, id_) or START
                for pos, tx, id_ in await self._rows(KEYS, (wanted,))}

    async def get_tracker(self, name: str) -> int:
        rows = await self._rows(GET_TRACKER, (name,))
        return int(rows[0][0]) if rows else 0

    # -- waiting -------------------------------------------------------------------------
    async def wait(self, position: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        listener = await self._get_listener(timeout)
        while True:
            generation = listener.generation
            if (await self._bounded(READABLE_AFTER, {"p": position}))[0][1]:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            step = min(self.poll_interval, remaining)
            if listener.listening:
                if await listener.wait_changed(generation, step):
                    return True
            else:
                await asyncio.sleep(min(step, 0.1))

    async def _get_listener(self, timeout: float) -> AsyncListener:
        created = self._listener is None
        if self._listener is None:
            self._listener = AsyncListener(lambda: self._dedicated("listen"), self.channel)
        listener = self._listener
        await listener.start(self.connect_timeout if created else min(timeout,
                                                                       self.connect_timeout))
        return listener


async def _version(conn: psycopg.AsyncConnection[Any], aggregate_id: str) -> int:
    with translate_errors():
        row = await (await conn.execute(AGGREGATE_VERSION, (aggregate_id,))).fetchone()
    return int(row[0]) if row else 0


def _key(tx: str | None, id_: int | None) -> StreamKey | None:
    return None if tx is None or id_ is None else StreamKey(int(tx), int(id_))


def _last_id(events: list[Event]) -> int:
    last = events[-1].id
    assert last is not None
    return last
