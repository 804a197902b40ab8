"""Reading the PostgreSQL stream in ``(tx, id)`` order, below the reader horizon.

A position is an event id; its *stream key* is the ``(tx, id)`` of the greatest event id at
or below it (``(0, 0)`` for position 0). "After a position" means a greater key. Readers
only see events whose ``tx`` lies below the horizon ``horizon.BOUND``: the better of the
oldest transaction in progress on the server and the connection's bound from the append
lock's holders (``horizon.py`` proves it), so nothing can later commit in front of them.
Each horizon-bound read also reports (its first column) whether committed events lie
beyond the bound it used; then the connection refreshes its bound and the read runs once
more.

**A worker's wake-up is one round trip** (``page_parked``, filtered or not): the page's
statement also returns the processor's parked rows among its events, and a filtered one
the readable head's key it reads up to. A worker's own listening connection, caught up,
reads its wake-ups with ``wake_up_page`` instead: one ordered scan of every type from a
key it already knows. A read that ends caught up notes the listener's
generation from before it, so that :meth:`PostgresStore.wait` on the same thread and
position sleeps until something is notified since (``caught_up``) instead of looking at
the table once more; a commit the read's snapshot missed is notified after that generation
was taken.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from esctl_lib.events import Event
from esctl_lib.stores.base import Page, ReaderHorizon, StreamKey
from esctl_lib.stores.postgres.decode import decode_rows
from esctl_lib.stores.postgres.errors import translate_errors
from esctl_lib.stores.postgres.horizon import BEHIND, state_of
from esctl_lib.stores.postgres.horizon import BOUND as HORIZON
from esctl_lib.stores.postgres.pool import cursor
from esctl_lib.stores.postgres.stream import COLUMNS, key_of

if TYPE_CHECKING:
    from esctl_lib.stores.postgres.listen import Listener
    from esctl_lib.stores.postgres.store import PostgresStore


START = StreamKey(0, 0)
# The hot path: everything readable after a position, one statement. A last row of NULLs
# but for its version column carries BEHIND (an Append costs less than a join per row).
READ_ALL = (
    f"(SELECT {COLUMNS} FROM events WHERE (tx, id) > {key_of('p')} AND tx < {HORIZON} "
    "ORDER BY tx, id LIMIT %(n)s) "
    f"UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, ({BEHIND})::int, NULL, NULL, NULL, NULL"
)
_VERSION_COLUMN = 5
_BODY_COLUMN = 4
_HEAD_COLUMN = 2
_TYPE_COLUMN = 3
#: How many columns an event row has (``decode_rows``), and where ``wake_up_query`` adds tx.
_EVENT_COLUMNS = _TX_COLUMN = 10
#: The reader's position's stream key, found once (one index probe) in a statement that
#: compares with it more than once (``key_of`` probes twice at each use); ``_AFTER_POSITION``
#: is the comparison. Four probes of the (id) index cost ~0.1 ms of every push wake-up
#: (bench/README.md, session 10).
_POSITION_CTE = (
    "pk AS MATERIALIZED (SELECT coalesce(k.tx, '0'::xid8) AS tx, coalesce(k.id, 0) AS id "
    "FROM (SELECT 1) AS one LEFT JOIN LATERAL (SELECT tx, id FROM events "
    "WHERE id <= %(p)s ORDER BY id DESC LIMIT 1) AS k ON true)"
)
_POSITION_KEY = "((SELECT pk.tx FROM pk), (SELECT pk.id FROM pk))"
_AFTER_POSITION = f"(tx, id) > {_POSITION_KEY}"


def _parked_among(ids: str) -> str:
    """The processor's (parameter ``proc``) parked rows among the events the query ``ids``
    selects, as one text ``"id:attempts,…"`` (NULL for none)."""
    return ("(SELECT string_agg(k.event_id::text || ':' || k.attempts::text, ',') "
            f"FROM parked_events AS k WHERE k.processor = %(proc)s AND k.event_id IN ({ids}))")


# READ_ALL for a processor's worker: its row of NULLs also carries, in its body column,
# the processor's parked rows among the page's events ("id:attempts,…"), read in the same
# statement (one snapshot, one round trip) instead of a statement of its own afterwards.
READ_ALL_PARKED = (
    f"WITH {_POSITION_CTE} "
    f"(SELECT {COLUMNS} FROM events WHERE {_AFTER_POSITION} AND tx < {HORIZON} "
    "ORDER BY tx, id LIMIT %(n)s) "
    "UNION ALL SELECT NULL, NULL, NULL, NULL, "
    + _parked_among(f"SELECT id FROM events WHERE {_AFTER_POSITION} AND tx < {HORIZON} "
                    "ORDER BY tx, id LIMIT %(n)s")
    + f", ({BEHIND})::int, NULL, NULL, NULL, NULL"
)


def sentinel_behind(rows: list[Any]) -> bool:
    """READ_ALL's BEHIND, from its row of NULLs (the last one)."""
    return bool(_sentinel(rows)[_VERSION_COLUMN])


def without_sentinel(rows: list[Any]) -> list[Any]:
    """READ_ALL's event rows: its row of NULLs taken out (in place)."""
    sentinel = _sentinel(rows)
    if rows[-1] is sentinel:
        rows.pop()
    else:
        rows.remove(sentinel)
    return rows


def _sentinel(rows: list[Any]) -> Any:
    last = rows[-1]
    if last[0] is None:
        return last
    return next(r for r in rows if r[0] is None)  # an Append that reordered (never seen)


# Keys of the readable head, of ``until`` and of ``position``, in one round trip.
BOUNDS = f"""
SELECT {BEHIND}, h.tx::text, h.id, u.tx::text, u.id, p.tx::text, p.id
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT tx, id FROM events WHERE tx < {HORIZON}
                   ORDER BY tx DESC, id DESC LIMIT 1) AS h ON true
LEFT JOIN LATERAL (SELECT tx, id FROM events WHERE id <= %(u)s
                   ORDER BY id DESC LIMIT 1) AS u ON true
LEFT JOIN LATERAL (SELECT tx, id FROM events WHERE id <= %(p)s
                   ORDER BY id DESC LIMIT 1) AS p ON true
"""
_RANGE = "(tx, id) > (%(ptx)s::xid8, %(pid)s) AND (tx, id) <= (%(btx)s::xid8, %(bid)s)"
READ_RANGE = f"SELECT {COLUMNS} FROM events WHERE {_RANGE} ORDER BY tx, id LIMIT %(n)s"
# Filtered reads (schema 3 has no (type, tx, id) index): one ordered range scan of the
# stream's (tx, id) index from the reader's position, the types a filter applied above it,
# so a filtered page costs at most an unfiltered scan of the same range. OFFSET 0 keeps the
# filter out of the ordered scan: left inside, a type the statistics call rare makes a plan
# that scans the whole table and sorts the matches, once for every page. With the fence the
# plan has one shape whatever the values (the generic plan psycopg's automatic preparing
# leads to is that ordered scan too), so a page read is prepared like any other: planning it
# afresh cost ~0.8 ms of every push wake-up (bench/README.md, "Where W4's time goes").
_IN_TYPES = sql.SQL("e.type IN ({})")
_COMMA = sql.SQL(", ")
_RAW = ("id, tx, uuid, aggregate_id, type, body, version, created_at, correlation_id, "
        "causation_id, metadata")
_CAST = (
    "e.id, e.uuid::text, e.aggregate_id::text, e.type, e.body::text, e.version, "
    "e.created_at, e.correlation_id::text, e.causation_id::text, e.metadata::text"
)
# The same columns named (a filtered page with parked rows is read from a CTE), and tx.
_CAST_NAMED = (
    "e.id, e.uuid::text AS uuid, e.aggregate_id::text AS aggregate_id, e.type, "
    "e.body::text AS body, e.version, e.created_at, e.correlation_id::text AS correlation_id, "
    "e.causation_id::text AS causation_id, e.metadata::text AS metadata, e.tx"
)
_OUTER = (
    "e.id, e.uuid, e.aggregate_id, e.type, e.body, e.version, e.created_at, "
    "e.correlation_id, e.causation_id, e.metadata"
)


#: A partition's events (``esctl_lib.processing.partitions.partition_of``, computed by the
#: server): the first 32 bits of the MD5 of the aggregate id's canonical text, unsigned,
#: modulo the count (parameters ``pc``, ``pi``).
_IN_PARTITION = sql.SQL(
    "('x' || left(md5(e.aggregate_id::text), 8))::bit(32)::bigint %% %(pc)s::bigint "
    "= %(pi)s::bigint"
)
_AND = sql.SQL(" AND ")


def _types_in(count: int) -> sql.Composed:
    return _IN_TYPES.format(_COMMA.join(sql.Placeholder(f"t{i}") for i in range(count)))


def _filter(count: int, partitioned: bool) -> sql.Composable:
    """The filter of a page's scan: ``count`` types (none: every type) and a partition."""
    parts: list[sql.Composable] = [_types_in(count)] if count else []
    if partitioned:
        parts.append(_IN_PARTITION)
    return _AND.join(parts) if parts else sql.SQL("true")


def partition_params(partition: tuple[int, int] | None) -> dict[str, int]:
    """``{"pi": index, "pc": count}`` for the partition filter (nothing without one)."""
    return {} if partition is None else {"pi": partition[0], "pc": partition[1]}


def _filtered_scan(columns: str, scan_range: str, count: int,
                   partitioned: bool) -> sql.Composed:
    """A page of ``columns``: the ordered ``(tx, id)`` scan of ``scan_range``, then the
    filter (``count`` types, a partition) above its ``OFFSET 0`` fence (see above)."""
    return sql.SQL(
        f"SELECT {columns} FROM (SELECT {_RAW} FROM events WHERE {scan_range} "
        "ORDER BY tx, id OFFSET 0) AS e WHERE {} ORDER BY e.tx, e.id LIMIT %(n)s"
    ).format(_filter(count, partitioned))


@lru_cache(maxsize=32)
def read_types_query(count: int, partitioned: bool = False) -> sql.Composed:
    """The filtered read for ``count`` types (parameters ``t0``, ``t1``, …; none: every
    type) and, ``partitioned``, one partition (``pi``, ``pc``)."""
    return _filtered_scan(_CAST, _RANGE, count, partitioned)


#: The readable head's key, once per statement: the range a filtered page reads ends there,
#: and a page that is not full ends the reader's position there.
_HEAD_CTE = (
    f"h AS MATERIALIZED (SELECT tx, id FROM events WHERE tx < {HORIZON} "
    "ORDER BY tx DESC, id DESC LIMIT 1)"
)
_TO_HEAD = (
    f"{_AFTER_POSITION} AND (tx, id) <= ((SELECT h.tx FROM h), (SELECT h.id FROM h))"
)


@lru_cache(maxsize=32)
def read_types_head_query(count: int, parked: bool, partitioned: bool = False
                          ) -> sql.Composed:
    """A filtered page (``count`` types, a partition: as :func:`read_types_query`) up to
    the readable head in ONE statement (BOUNDS and the page in one
    snapshot, one round trip): its event rows, then a row of NULLs that carries ``BEHIND``
    in its version column, the head's id (text; NULL unless the head lies after the
    position in stream order) in its aggregate_id column and, with
    ``parked``, the processor's parked rows among the page's events in its body column
    (parameter ``proc``). Every event at or below the head is final (``horizon.py``), so
    a page that is not full lets the reader move to the head, as with :data:`BOUNDS`."""
    page = _filtered_scan(_CAST_NAMED, _TO_HEAD, count, partitioned)
    parked_rows = _parked_among("SELECT id FROM page") if parked else "NULL"
    return sql.SQL(
        f"WITH {_POSITION_CTE}, {_HEAD_CTE}, page AS MATERIALIZED ({{}}) "
        f"(SELECT {_OUTER} FROM page AS e ORDER BY e.tx, e.id) "
        f"UNION ALL SELECT NULL, NULL, (SELECT h.id FROM h WHERE (h.tx, h.id) > "
        f"{_POSITION_KEY})::text, NULL, "
        f"{parked_rows}, ({BEHIND})::int, NULL, NULL, NULL, NULL"
    ).format(page)


@lru_cache(maxsize=32)
def wake_up_query(count: int, keyed: bool) -> sql.Composed:
    """A caught-up worker's wake-up (``listening_reader.py``): everything readable after
    the position in stream order, of every type, each row with its ``tx`` as text in an
    eleventh column (``_TX_COLUMN``), so that the reader learns the key it ends at.

    ``keyed``: the position's key comes as parameters (``ptx``, ``pid``) instead of from a
    probe. With ``count`` types (``t0``, …), the other types' rows come without their body,
    for the reader to drop: a wake-up's page holds what was committed since the last one,
    and one ordered scan of the stream's index costs less than the filtered read's fenced
    scan, head probe and materialised page (bench/README.md, session 12). Its row of NULLs
    carries the parked rows among the scanned events and ``BEHIND``, as in
    ``READ_ALL_PARKED``."""
    after = "(tx, id) > (%(ptx)s::xid8, %(pid)s::bigint)" if keyed else _AFTER_POSITION
    body = "CASE WHEN {} THEN e.body::text END" if count else "body::text"
    columns = COLUMNS.replace("body::text", body, 1) + ", tx::text"
    scan = f"FROM events AS e WHERE {after} AND tx < {HORIZON} ORDER BY tx, id LIMIT %(n)s"
    text = (("" if keyed else f"WITH {_POSITION_CTE} ")
            + f"(SELECT {columns} {scan}) UNION ALL SELECT NULL, NULL, NULL, NULL, "
            + _parked_among(f"SELECT id {scan}")
            + f", ({BEHIND})::int, NULL, NULL, NULL, NULL, NULL")
    return sql.SQL(text).format(*([_types_in(count)] if count else []))


@lru_cache(maxsize=32)
def latest_of_types_query(count: int) -> sql.Composed:
    """The newest readable event among ``count`` types (parameters ``t0``, ``t1``, …)."""
    return sql.SQL(
        f"SELECT {BEHIND}, (SELECT e.id FROM (SELECT id, tx, type FROM events "
        f"WHERE tx < {HORIZON} ORDER BY tx DESC, id DESC OFFSET 0) AS e "
        "WHERE {} ORDER BY e.tx DESC, e.id DESC LIMIT 1)"
    ).format(_types_in(count))


def type_params(types: list[str]) -> dict[str, str]:
    """``{"t0": types[0], …}`` for the queries above."""
    return {f"t{i}": t for i, t in enumerate(types)}


READABLE_AFTER = (
    f"SELECT {BEHIND}, "
    f"EXISTS (SELECT 1 FROM events WHERE (tx, id) > {key_of('p')} AND tx < {HORIZON})"
)
LATEST = (
    f"SELECT {BEHIND}, (SELECT id FROM events WHERE tx < {HORIZON} "
    "ORDER BY tx DESC, id DESC LIMIT 1)"
)
_COUNT = f"SELECT count(*) FROM events WHERE (tx, id) > {key_of('p')} AND tx < {HORIZON}"
COUNT = f"SELECT {BEHIND}, ({_COUNT})"
COUNT_TYPES = f"SELECT {BEHIND}, ({_COUNT} AND type = ANY(%(types)s::text[]))"
# The stream key of each position: that of the greatest event id at or below it.
KEYS = """
SELECT p.pos, k.tx::text, k.id FROM unnest(%s::bigint[]) AS p(pos)
LEFT JOIN LATERAL (SELECT tx, id FROM events WHERE id <= p.pos
                   ORDER BY id DESC LIMIT 1) AS k ON true
"""
AGGREGATE = (
    f"SELECT {COLUMNS} FROM events WHERE aggregate_id = %s AND version >= %s ORDER BY version"
)
HOLDER = """
SELECT pid, extract(epoch FROM clock_timestamp() - xact_start)::float8, application_name,
       state, datname
FROM pg_stat_activity WHERE pid = %s
"""
PREPARED_HOLDER = """
SELECT extract(epoch FROM clock_timestamp() - prepared)::float8, gid, database
FROM pg_prepared_xacts WHERE database = current_database() ORDER BY prepared LIMIT 1
"""
PENDING = f"SELECT count(*) FROM events WHERE tx >= {HORIZON}"
OWN_READABLE = (
    f"SELECT {BEHIND}, EXISTS (SELECT 1 FROM events WHERE id = %(id)s AND tx < {HORIZON})"
)


def range_params(row: Any, until: int | None, limit: int) -> dict[str, Any] | None:
    """READ_RANGE's parameters from a BOUNDS row (after its BEHIND column): from the
    position's key to the readable head's (or ``until``'s, if lower); None when that range
    is empty. Shared by the sync and the async store."""
    head = _key(row[1], row[2]) or START
    start = _key(row[5], row[6]) or START
    bound = head if until is None else min(head, _key(row[3], row[4]) or START)
    if bound <= start:
        return None
    return {"ptx": str(start.tx), "pid": start.id, "btx": str(bound.tx), "bid": bound.id,
            "n": limit}


def _key(tx: str | None, id_: int | None) -> StreamKey | None:
    return None if tx is None or id_ is None else StreamKey(int(tx), int(id_))


class Reads:
    """The read queries of one :class:`PostgresStore`, on its pool's connections or, given
    ``connection``, on the connections that context-manager factory gives (a
    :class:`~esctl_lib.stores.postgres.follow.Follower`'s own)."""

    def __init__(self, store: PostgresStore, *,
                 connection: Callable[[], AbstractContextManager[psycopg.Connection[Any]]]
                 | None = None) -> None:
        self._store = store
        self._connection = store.connection if connection is None else connection
        #: Reads on a follower's connection: it tracks catching up itself.
        self._uses_listener = connection is None
        # (thread, position, listener, generation): a read on that thread found nothing
        # readable after ``position``, and the listener was at ``generation`` before it.
        self._caught_up: tuple[int, int, Listener, int] | None = None

    def _generation(self) -> tuple[Listener, int] | None:
        listener = self._store._listener
        if listener is None or not self._uses_listener or not listener.listening:
            return None
        return listener, listener.generation

    def _note_caught_up(self, before: tuple[Listener, int] | None, end: int) -> None:
        self._caught_up = None if before is None else (threading.get_ident(), end, *before)

    def caught_up(self, position: int, listener: Listener) -> int | None:
        """The listener's generation before this thread's last read, when that read found
        nothing readable after ``position`` (once; else None): :meth:`PostgresStore.wait`
        then waits for a notification since that read instead of reading again."""
        found, self._caught_up = self._caught_up, None
        if (found is None or found[0] != threading.get_ident() or found[1] != position
                or found[2] is not listener):
            return None
        return found[3]

    def _rows(
        self, query: str | sql.Composed, params: Any, *, prepare: bool | None = None
    ) -> list[Any]:
        with self._connection() as conn, translate_errors():
            return cursor(conn).execute(query, params, prepare=prepare).fetchall()

    def _bounded(
        self, query: str | sql.Composed, params: dict[str, Any], *,
        prepare: bool | None = None, behind: Callable[[list[Any]], bool] | None = None,
    ) -> list[Any]:
        """Rows of a horizon-bound read that reports ``BEHIND`` (in its first column, or
        as ``behind`` finds it): when it is true, refresh the connection's bound and, if it
        moved, read again (once)."""
        store = self._store
        with self._connection() as conn, translate_errors():
            state = state_of(conn)
            cur = cursor(conn)
            rows = cur.execute(query, {**params, **state.params()}, prepare=prepare).fetchall()
            late = behind(rows) if behind is not None else bool(rows[0][0])
            if late and state.refresh(conn, store.append_key):
                rows = cur.execute(query, {**params, **state.params()},
                                   prepare=prepare).fetchall()
            return rows

    def _decode(self, rows: list[tuple[Any, ...]]) -> list[Event]:
        return decode_rows(self._store.registry, rows)

    def wait_for_own_writes(self) -> None:
        """Read your own writes: wait up to ``own_writes_wait`` seconds for the newest event
        this process appended to fall below the horizon (other transactions may be open),
        then stop waiting for it."""
        store = self._store
        own_writes = store.own_writes
        newest = own_writes.newest
        if not newest:
            return
        deadline = time.monotonic() + store.own_writes_wait
        delay = 0.001
        while not self._bounded(OWN_READABLE, {"id": newest})[0][1]:
            if time.monotonic() >= deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        own_writes.forget(newest)

    def page(
        self, position: int, *, types: Collection[str] | None, limit: int, until: int | None,
        partition: tuple[int, int] | None = None,
    ) -> Page:
        """See ``EventStore.read_page``: events after ``position`` in stream order (of
        ``partition`` = (index, count) only, filtered by the server)."""
        self.wait_for_own_writes()
        self._caught_up = None
        before = self._generation() if until is None else None
        type_list = None if types is None else list(types)
        if type_list is None and partition is None and until is None:
            rows = self._bounded(READ_ALL, {"p": position, "n": limit},
                                 behind=sentinel_behind)
            events = self._decode(without_sentinel(rows))
            end = _last_id(events) if events else position
            if len(events) < limit:
                self._note_caught_up(before, end)
            return Page(events, end)
        if type_list != [] and until is None:
            rows = self._bounded(
                read_types_head_query(len(type_list or ()), False, partition is not None),
                {"p": position, "n": limit, **type_params(type_list or []),
                 **partition_params(partition)}, behind=sentinel_behind)
            return self._head_page(rows, _sentinel(rows), position, limit, before)
        params = range_params(self._bounded(BOUNDS, {"p": position, "u": until})[0],
                              until, limit)
        if params is None:
            self._note_caught_up(before, position)
            return Page([], position)
        if type_list == []:
            return Page([], params["bid"])
        if type_list is None and partition is None:
            rows = self._rows(READ_RANGE, params)
        else:
            query = read_types_query(len(type_list or ()), partition is not None)
            rows = self._rows(query, {**params, **type_params(type_list or []),
                                      **partition_params(partition)})
        events = self._decode(rows)
        full = len(events) >= limit
        if not full:
            self._note_caught_up(before, params["bid"])
        return Page(events, _last_id(events) if full else params["bid"])

    def page_parked(self, position: int, processor: str, *, types: Collection[str] | None,
                    limit: int, partition: tuple[int, int] | None = None
                    ) -> tuple[Page, dict[int, int]]:
        """:meth:`page` up to the head, and ``processor``'s parked rows among its events
        (event id -> attempts) in the same statement: one round trip, filtered or not."""
        self.wait_for_own_writes()
        self._caught_up = None
        before = self._generation()
        type_list = None if types is None else list(types)
        if type_list is None and partition is None:
            rows = self._bounded(READ_ALL_PARKED,
                                 {"p": position, "n": limit, "proc": processor},
                                 behind=sentinel_behind)
            parked = _parked(_sentinel(rows)[_BODY_COLUMN])
            events = self._decode(without_sentinel(rows))
            end = _last_id(events) if events else position
            if len(events) < limit:
                self._note_caught_up(before, end)
            return Page(events, end), parked
        if type_list == []:  # nothing to read: as a page of no type would end
            return self.page(position, types=(), limit=limit, until=None), {}
        rows = self._bounded(
            read_types_head_query(len(type_list or ()), True, partition is not None),
            {"p": position, "n": limit, "proc": processor, **type_params(type_list or []),
             **partition_params(partition)}, behind=sentinel_behind)
        sentinel = _sentinel(rows)
        parked = _parked(sentinel[_BODY_COLUMN])
        return self._head_page(rows, sentinel, position, limit, before), parked

    def wake_up_page(self, position: int, key: StreamKey | None, processor: str, *,
                     types: Collection[str] | None, limit: int
                     ) -> tuple[Page, dict[int, int], StreamKey | None, bool]:
        """:meth:`page_parked` for a reader caught up at ``position`` (``wake_up_query``):
        the page (its events of ``types`` only; it ends at the last event scanned, or at
        ``position``), the parked rows among its events, the key of its end (``key`` when
        nothing was read; None when that is unknown) and whether the scan filled ``limit``.
        ``key``, when given, must be the stream key of ``position`` on this server."""
        self.wait_for_own_writes()
        self._caught_up = None
        type_list = None if types is None else list(types)
        params: dict[str, Any] = {"n": limit, "proc": processor,
                                  **type_params(type_list or [])}
        if key is None:
            params["p"] = position
        else:
            params["ptx"], params["pid"] = str(key.tx), key.id
        rows = self._bounded(wake_up_query(len(type_list or ()), key is not None), params,
                             behind=sentinel_behind)
        parked = _parked(_sentinel(rows)[_BODY_COLUMN])
        rows = without_sentinel(rows)
        full = len(rows) >= limit
        end, end_key = position, key
        if rows:
            last = rows[-1]
            end, end_key = last[0], StreamKey(int(last[_TX_COLUMN]), last[0])
        if type_list is not None:
            wanted = set(type_list)
            rows = [r for r in rows if r[_TYPE_COLUMN] in wanted]
        events = self._decode([r[:_EVENT_COLUMNS] for r in rows])
        if parked:
            ids = {e.id for e in events}
            parked = {i: n for i, n in parked.items() if i in ids}
        return Page(events, end), parked, end_key, full

    def _head_page(self, rows: list[Any], sentinel: Any, position: int, limit: int,
                   before: tuple[Listener, int] | None) -> Page:
        """The page of a :func:`read_types_head_query` read: full, it ends at its last
        event; else at the readable head (a position's key orders it, not its id: the head
        may have a lower id), or where it was when the head is not after it; and the read
        was caught up."""
        events = self._decode(without_sentinel(rows))
        if len(events) >= limit:
            return Page(events, _last_id(events))
        head = sentinel[_HEAD_COLUMN]
        end = position if head is None else int(head)
        self._note_caught_up(before, end)
        return Page(events, end)

    def aggregate(self, aggregate_id: str, from_version: int) -> list[Event]:
        """One aggregate's committed events in version order (no horizon applies here)."""
        return self._decode(self._rows(AGGREGATE, (aggregate_id, from_version)))

    def latest(self, types: Collection[str] | None) -> int:
        """The newest readable event in stream order (of ``types``), 0 when none."""
        self.wait_for_own_writes()
        if types is None:
            found = self._bounded(LATEST, {})[0][1]
        else:
            type_list = list(types)
            if not type_list:
                return 0
            query = latest_of_types_query(len(type_list))
            found = self._bounded(query, type_params(type_list), prepare=False)[0][1]
        return int(found) if found is not None else 0

    def count(self, after: int, types: Collection[str] | None) -> int:
        """How many readable events lie after ``after`` in stream order."""
        self.wait_for_own_writes()
        if types is None:
            return int(self._bounded(COUNT, {"p": after})[0][1])
        type_list = list(types)
        if not type_list:
            return 0
        params = {"p": after, "types": type_list}
        return int(self._bounded(COUNT_TYPES, params, prepare=False)[0][1])

    def readable_after(self, position: int) -> bool:
        """True when some event after ``position`` is readable now."""
        return bool(self._bounded(READABLE_AFTER, {"p": position})[0][1])

    def keys(self, positions: Collection[int]) -> dict[int, StreamKey]:
        """The stream key of each position (``START`` for one below every event)."""
        wanted = sorted({int(p) for p in positions})
        if not wanted:
            return {}
        return {int(pos): _key(tx, id_) or START
                for pos, tx, id_ in self._rows(KEYS, (wanted,))}

    def horizon(self) -> ReaderHorizon:
        """What holds the reader horizon back, and how many events wait behind it: the
        append-lock holder with the oldest id, or a prepared transaction (``horizon.py``);
        nothing else can."""
        store = self._store
        with store.connection() as conn, translate_errors():
            state = state_of(conn)
            state.refresh(conn, store.append_key)
            cur = cursor(conn)
            counted = cur.execute(PENDING, state.params()).fetchone()
            pending = int(counted[0]) if counted else 0
            found = state.last
            if found.prepared:
                row = cur.execute(PREPARED_HOLDER).fetchone()
                if row is not None:
                    age, gid, db = row
                    return ReaderHorizon(pending=pending, age_seconds=age, database=db,
                                         application=f"prepared transaction {gid}",
                                         state="prepared")
            if found.pid is None:  # nothing holds readers back: what lies beyond the bound
                return ReaderHorizon(pending=0)  # committed after it and is read next time
            if not pending:
                return ReaderHorizon(pending=0)
            row = cur.execute(HOLDER, (found.pid,)).fetchone()
        if row is None:  # it has just ended
            return ReaderHorizon(pending=pending)
        pid, age, app, state_name, db = row
        return ReaderHorizon(pending=pending, pid=pid, age_seconds=age, application=app,
                             state=state_name, database=db)


def _parked(found: str | None) -> dict[int, int]:
    """The parked rows a page's row of NULLs carries: ``"id:attempts,…"``."""
    parked: dict[int, int] = {}
    if found:
        for item in found.split(","):
            event_id, attempts = item.split(":")
            parked[int(event_id)] = int(attempts)
    return parked


def _last_id(events: list[Event]) -> int:
    last = events[-1].id
    assert last is not None
    return last
