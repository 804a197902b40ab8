"""The reader horizon on PostgreSQL: only transactions that can still insert events into
*this* store hold readers back.

The stream is ordered by ``(tx, id)`` (``tx`` is the inserting transaction's id, an
``xid8``) and a reader reads only events whose ``tx`` lies below a *bound* ``B``: a
transaction id such that every transaction with an id below ``B`` that ever inserts an event
into this store has already ended. Then nothing can later commit in front of what a reader
has seen, so no reader ever skips, without a global write lane.

The cheap bound is ``pg_snapshot_xmin(pg_current_snapshot())``, the oldest transaction in
progress on the whole server; it stalls behind any transaction that holds an id, in any
database (a psql session left idle in transaction, a projector batch that wrote read-model
rows). This module computes a better one.

**The append lock.** Every transaction that inserts events takes the store's *append lock*,
a shared transaction-level advisory lock (``pg_advisory_xact_lock_shared``) whose key is a
stable hash of the store's schema (advisory locks are per database, so the key names the
store), **before it has a transaction id**: an autocommit append takes it in the same
statement as its insert, before the insert produces a row (the lock is a materialised CTE
the insert's rows are joined with, and the row's ``tx`` default, which assigns the id, is
computed only for joined rows); a transaction takes it at its first append or at
:meth:`Transaction.will_append`, in a statement that checks
``pg_current_xact_id_if_assigned() IS NULL`` and takes nothing and raises otherwise. Nobody
ever takes the lock exclusively, so writers never wait for each other on it; it is held to
the transaction's end and never released earlier (no ``pg_advisory_unlock``; the lock is
taken at the transaction's top level, outside any savepoint that could undo it).

**The refresh.** A reader that finds committed events at or beyond its bound runs, on its
own autocommit connection, in one pipeline (one round trip; the server runs them in order):

1. statement A, with snapshot ``s``: ``X = pg_snapshot_xmax(s)``, ``xip(s)`` (the ids in
   progress at ``s``, prepared transactions included) and, read during A (after ``s``),
   ``backend_xid`` of every backend (``pg_stat_activity``), at a moment ``p > s``;
2. statement B, at a moment ``o > p``: the lock table's entries for the append lock
   (``pg_locks``; the lock table is read as one consistent picture).

``B = min({X} + {t in xip(s) : t is the backend_xid seen at p of a backend that holds the
lock at o})``; if some holder at ``o`` has no backend (a prepared transaction), ``B`` falls
back to ``pg_snapshot_xmin(s)``. Reads then run in later statements (later snapshots) with
``tx < greatest(pg_snapshot_xmin(now), B)``.

**Claim.** Every transaction ``T`` with id ``t < B`` that inserts an event has ended before
``o``; so every later snapshot sees all of its events, and none can appear later below
``B``.

*Proof.* Ids are assigned in increasing order and ``X ≤`` the next id to be assigned at
``s`` (``X`` is one past the newest ended transaction), so an id assigned after ``s`` is
``≥ X ≥ B``. Hence ``t`` was assigned before ``s``; ``t < X`` and ``T`` is either ended at
``s`` or in ``xip(s)``. ``T`` took the lock at a moment ``a`` before ``t`` was assigned and
holds it until it ends (locks are released after the commit is visible to new snapshots).

- ``a > o``: then ``t`` is assigned after ``a > o > s``: ``t ≥ X ≥ B``. Impossible.
- ``p < a < o``: then ``t`` is assigned after ``a > p > s``: ``t ≥ X ≥ B``. Impossible.
- ``a < p`` and ``T`` still holds the lock at ``o``: if ``T`` is a prepared transaction at
  ``o``, ``B = xmin(s) ≤ t`` (``T`` was in progress at ``s``). Impossible. Otherwise ``T`` is a
  backend at ``o``, hence at ``p`` too (a transaction never becomes a backend again after
  ``PREPARE``), and its ``PGPROC`` carries ``t`` from the moment ``t`` was assigned (under
  ``XidGenLock``, before ``s``, which is how snapshots see it too): the ``backend_xid`` read
  at ``p`` for that pid is ``t``, ``t in xip(s)``, and ``B ≤ t``. Impossible. (The same pid
  may run a newer transaction at ``o`` than at ``p``; that only lowers ``B``.)
- so ``T`` released the lock before ``o``: it ended before ``o``. ∎

Consequences, the careful cases: a lock holder with no id yet (``backend_xid`` NULL) gets
one above ``X`` and bounds nothing; a holder with an id bounds readers at it; a transaction
that has an id and never took the lock (another database, a projector batch writing
read-model rows, the application's own tables, psql) bounds nothing, because it can never
take the lock any more; a transaction that took the lock and has written is a real blocker
until it ends. ``B ≥ xmin(s)`` always (a holder's id is in progress at ``s``), so the new
bound is never worse than the old one, and a bound stays true forever: it is kept per
connection (a connection talks to one server for its whole life, so a failover or a
restore never meets a bound learnt elsewhere).

**When to refresh.** Every read reports whether committed events lie at or beyond the bound
it used (an index probe at the top of ``(tx, id)``); only then does the reader refresh,
and not while the transaction that set the last bound (its *blocker*) is still in
progress, since the bound cannot move before it ends (it still holds the lock). While a
prepared transaction holds the lock the fallback has no blocker, so a read that finds
events beyond the bound refreshes each time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from esctl_lib.errors import StoreError
from esctl_lib.stores.postgres.lock import lock_key
from esctl_lib.stores.postgres.pool import cursor

#: 2**32: an ``xid8`` modulo this is the 32-bit ``xid`` that ``pg_stat_activity`` shows.
_EPOCH = 1 << 32


def append_lock_key(schema: str) -> int:
    """The signed 64-bit advisory-lock key of ``schema``'s append lock."""
    return lock_key("append", schema)


def schema_lock_key(schema: str) -> int:
    """The advisory-lock key that serializes processors' DDL in ``schema``
    (``Transaction.lock_schema_changes``)."""
    return lock_key("ddl", schema)


#: The best known bound on this connection, or the cheap one if that is better.
BOUND = "greatest(pg_snapshot_xmin(pg_current_snapshot()), %(hb)s::xid8)"
#: True when committed events lie at or beyond the bound and refreshing may help.
BEHIND = (  # the newest committed event's tx: one backward probe of the (tx, id) index
    f"(coalesce((SELECT tx FROM events ORDER BY tx DESC, id DESC LIMIT 1) >= {BOUND}, false) "
    "AND (%(blk)s::xid8 IS NULL OR pg_visible_in_snapshot(%(blk)s::xid8, pg_current_snapshot())))"
)

# Taking the lock inside a transaction: only while it has no id (else nothing is taken).
TAKE = (
    "SELECT CASE WHEN pg_current_xact_id_if_assigned() IS NULL "
    "THEN pg_advisory_xact_lock_shared(%s)::text = '' ELSE false END"
)
# Statement A of a refresh: the snapshot, then every backend's transaction id.
_FACTS = """
SELECT pg_snapshot_xmin(s.c)::text, pg_snapshot_xmax(s.c)::text,
       ARRAY(SELECT x::text FROM pg_snapshot_xip(s.c) AS x),
       ARRAY(SELECT ARRAY[a.pid::bigint, a.backend_xid::text::bigint]
             FROM pg_stat_activity AS a WHERE a.backend_xid IS NOT NULL)
FROM (SELECT pg_current_snapshot() AS c) AS s
"""
# Statement B: who holds the append lock (pid NULL: a prepared transaction).
_HOLDERS = """
SELECT l.pid FROM pg_locks AS l
WHERE l.locktype = 'advisory' AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid
"""


def take_error() -> StoreError:
    """The error for a transaction that wrote before it declared it would append."""
    return StoreError(
        "this transaction wrote before it started appending events: on PostgreSQL a "
        "transaction that appends must call will_append() (or append) before its first "
        "write, so that readers know it may still add events")


@dataclass(frozen=True, slots=True)
class Bound:
    """A refresh's result: the bound, and what set it."""

    value: int
    #: The lock holder's transaction id that set ``value`` (None: nothing holds it there).
    blocker: int | None = None
    #: That holder's backend pid.
    pid: int | None = None
    #: True when a prepared transaction holds the lock (``value`` is then the cheap bound).
    prepared: bool = False


def compute_bound(xmin: int, xmax: int, xip: list[int], xids: dict[int, int],
                  holders: list[int | None]) -> Bound:
    """The bound from a refresh's facts (see the module docstring).

    ``xids`` maps a backend pid to the 32-bit ``backend_xid`` seen after the snapshot;
    ``holders`` are the pids holding the append lock, None for a prepared transaction.
    """
    if any(pid is None for pid in holders):
        return Bound(xmin, prepared=True)
    running = {x % _EPOCH: x for x in xip}
    best = Bound(xmax)
    for pid in holders:
        assert pid is not None
        low = xids.get(pid)
        full = None if low is None else running.get(low)
        if full is not None and full < best.value:  # an id assigned after s bounds nothing
            best = Bound(full, blocker=full, pid=pid)
    return best


class HorizonState:
    """What one connection knows: its best bound and the transaction that set it."""

    __slots__ = ("blocker", "bound", "last")

    def __init__(self) -> None:
        self.bound = 0
        self.blocker: int | None = None
        self.last = Bound(0)

    def params(self) -> dict[str, Any]:
        return {"hb": str(self.bound),
                "blk": None if self.blocker is None else str(self.blocker)}

    def refresh(self, conn: psycopg.Connection[Any], key: int) -> bool:
        """Recompute the bound; True when it moved forward.

        Statements A and B go in one pipeline: one round trip, and the server still runs
        them one after the other (B's ``pg_locks`` read comes after A has ended)."""
        facts_cur, holders_cur = cursor(conn), conn.cursor()
        with conn.pipeline():
            facts_cur.execute(_FACTS, prepare=False)
            holders_cur.execute(_HOLDERS, _key_halves(key))
        facts = facts_cur.fetchone()
        holders = [r[0] for r in holders_cur.fetchall()]
        holders_cur.close()
        return self._settle(facts, holders)

    async def refresh_async(self, conn: psycopg.AsyncConnection[Any], key: int) -> bool:
        """:meth:`refresh` on an async connection (the same pipeline of two statements)."""
        facts_cur, holders_cur = conn.cursor(), conn.cursor()
        async with conn.pipeline():
            await facts_cur.execute(_FACTS, prepare=False)
            await holders_cur.execute(_HOLDERS, _key_halves(key))
        facts = await facts_cur.fetchone()
        holders = [r[0] for r in await holders_cur.fetchall()]
        await facts_cur.close()
        await holders_cur.close()
        return self._settle(facts, holders)

    def _settle(self, facts: Any, holders: list[int | None]) -> bool:
        assert facts is not None
        xmin, xmax = int(facts[0]), int(facts[1])
        xip = [int(x) for x in facts[2]]
        xids = {int(pid): int(xid) for pid, xid in facts[3]}
        found = compute_bound(xmin, xmax, xip, xids, holders)
        self.last = found
        moved = found.value > self.bound
        if found.value >= self.bound:
            self.bound = found.value
            self.blocker = found.blocker
        return moved


def _key_halves(key: int) -> tuple[int, int]:
    """The lock key as pg_locks shows it: (classid, objid)."""
    return (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF


def state_of(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> HorizonState:
    """The connection's horizon state (created on first use)."""
    found: HorizonState | None = getattr(conn, "_esctl_horizon", None)
    if found is None:
        found = HorizonState()
        conn._esctl_horizon = found  # type: ignore[union-attr]
    return found


def take_lock(conn: psycopg.Connection[Any], key: int) -> None:
    """Take the append lock in ``conn``'s open transaction, which must have no id yet."""
    row = cursor(conn).execute(TAKE, (key,)).fetchone()
    if not (row and row[0]):
        raise take_error()
