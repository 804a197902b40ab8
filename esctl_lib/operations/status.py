"""``esctl status``: the store, and per processor its position, lag, state and health.

Health never turns good by itself (see :mod:`esctl_lib.processing.state`): a failing
processor, one that crashed, and one whose heartbeat went stale while it claimed to be
alive are unhealthy until it processes successfully again. Lag counts the events a
processor has yet to process, including those that exist but are not yet readable
(PostgreSQL: committed behind an older transaction still in progress). With ``max_lag`` or
``max_lag_seconds``, a lag beyond the limit is unhealthy too; each reason is one line of
:attr:`StatusReport.problems` (``esctl status --check`` prints them).

**Bounded time.** A lag (and the store's event count) is counted exactly up to
:data:`EXACT_LAG` events in stream order (:meth:`EventStore.estimate_count`); beyond that,
or for a type rarer than the stream entries a type's count looks at, it is estimated from
positions and marked so (``lag_estimated``, ``total_estimated``). ``max_lag`` is always
decided exactly: the count then goes up to ``max_lag + 1`` events, and when that still
leaves an estimate that did not see more than ``max_lag`` events (a rare type far behind),
the lag is counted in full, so an estimate never makes a healthy processor unhealthy or
the other way round. The lag in seconds is exact (one index probe for the oldest
unprocessed event).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from esctl_lib.processing.rebuilds import FAILED, INTERRUPTED, rebuild_state
from esctl_lib.stores.base import EXACT_COUNT_LIMIT, CountEstimate, EventStore

if TYPE_CHECKING:
    from esctl_lib.processing.processor import Processor
    from esctl_lib.processing.state import ProcessorState

#: Lags (and the store's event count) are exact up to this many events, else estimated.
EXACT_LAG = EXACT_COUNT_LIMIT


@dataclass(frozen=True, slots=True)
class ProcessorStatus:
    """One processor: where it is, how far behind, and what its runner reports."""

    name: str
    kind: str
    #: Its tracker: the last position processed (or scanned past).
    position: int
    #: The store's head (the newest readable event id), the same for every processor.
    head: int
    #: Events of its types after its position, plus ``waiting_events``.
    lag_events: int
    #: Age in seconds of the oldest event it has yet to process (0 when caught up); while
    #: events wait behind an open transaction, at least how long that has been open.
    lag_seconds: float
    #: running | idle | failing | parked | standby | starting | stopped | crashed, with
    #: `` (stale)`` when a live state's heartbeat stopped
    state: str
    pid: int | None
    host: str | None
    heartbeat_at: float | None
    last_error: str | None
    parked: int
    #: Committed events no reader can see yet (held back by an open transaction; of any
    #: type, since their types cannot be read yet). Counted in ``lag_events``.
    waiting_events: int = 0
    #: Seconds since its last heartbeat (None when it never ran).
    heartbeat_age: float | None = None
    #: The traceback of the last error, when it was a failure in user code.
    traceback: str | None = None
    #: The tables it owns.
    tables: tuple[str, ...] = ()
    #: A rebuild in progress (or failed) as its state records it, else None.
    rebuild: Any = None
    #: Why it is unhealthy, one line each (empty when healthy).
    problems: tuple[str, ...] = ()
    #: True when ``lag_events`` is an estimate from positions (more than :data:`EXACT_LAG`
    #: events behind, and more than ``max_lag`` when one was given).
    lag_estimated: bool = False

    @property
    def healthy(self) -> bool:
        """True when nothing is wrong with it."""
        return not self.problems

    @property
    def failing(self) -> bool:
        """True when it is unhealthy (failing, crashed, stale, or an uncleared error)."""
        return bool(self.problems)


@dataclass(frozen=True, slots=True)
class StatusReport:
    """The whole picture: store facts and one :class:`ProcessorStatus` per processor."""

    store_url: str
    #: The store's backend: "memory", "sqlite" or "postgresql".
    backend: str
    schema_version: int
    total_events: int
    head: int
    processors: list[ProcessorStatus]
    #: PostgreSQL: committed events readers cannot see yet, held back by the oldest open
    #: writing transaction (``pending``, ``pid``, ``age_seconds``, ``application``, ...).
    #: None on other stores.
    horizon: dict[str, Any] | None = None
    #: True when ``total_events`` is an estimate (more than :data:`EXACT_LAG` events).
    total_estimated: bool = False

    @property
    def problems(self) -> list[str]:
        """Every reason the store's processors are unhealthy, ``"name: reason"`` each."""
        return [f"{p.name}: {reason}" for p in self.processors for reason in p.problems]

    @property
    def healthy(self) -> bool:
        """True when no processor has a problem."""
        return not self.problems

    @property
    def failing(self) -> bool:
        """True when any processor is unhealthy (``esctl status`` then exits 1)."""
        return not self.healthy

    def processor(self, name: str) -> ProcessorStatus | None:
        """The named processor's status, or None."""
        return next((p for p in self.processors if p.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``esctl status --json``)."""
        return {
            "store": {"url": self.store_url, "backend": self.backend,
                      "schema_version": self.schema_version,
                      "total_events": self.total_events,
                      "total_events_estimated": self.total_estimated, "head": self.head},
            "failing": self.failing,
            "healthy": self.healthy,
            "problems": self.problems,
            "horizon": self.horizon,
            "processors": [processor_dict(p) for p in self.processors],
        }


def processor_dict(p: ProcessorStatus) -> dict[str, Any]:
    """JSON-able form of one processor's status."""
    values = {f: getattr(p, f) for f in p.__slots__}
    values.update(tables=list(p.tables), problems=list(p.problems))
    return {**values, "healthy": p.healthy, "failing": p.failing}


@dataclass(frozen=True, slots=True)
class Limits:
    """What counts as unhealthy beyond failures: lag limits and the stale threshold."""

    max_lag: int | None = None
    max_lag_seconds: float | None = None
    stale_after: float | None = None


def status_report(
    store: EventStore,
    processors: Iterable[Processor],
    *,
    now: float | None = None,
    max_lag: int | None = None,
    max_lag_seconds: float | None = None,
    stale_after: float | None = None,
) -> StatusReport:
    """Gather the status of ``store`` and ``processors`` (the store URL is masked).

    ``max_lag`` (events) and ``max_lag_seconds`` make a lag beyond them a problem;
    ``stale_after`` is how many seconds without a heartbeat mark a live instance dead
    (default :data:`~esctl_lib.processing.state.STALE_AFTER`); ``now`` is the clock.
    """
    from esctl_lib.processing.partitions import expand_partitions
    from esctl_lib.processing.state import read_states

    now = time.time() if now is None else now
    limits = Limits(max_lag, max_lag_seconds, stale_after)
    states = {s.name: s for s in read_states(store)}
    trackers = store.trackers()
    parked = parked_counts(store)
    horizon = _horizon(store)
    head = store.latest_position()
    rows = [
        _processor_status(store, p, trackers.get(p.name, 0), states.get(p.name),
                          parked.get(p.name, 0), now, head=head, horizon=horizon,
                          limits=limits)
        for p in expand_partitions(processors)  # a partitioned processor: each partition
    ]
    total = store.estimate_count(exact_up_to=EXACT_LAG)
    return StatusReport(
        store_url=store.display_url,
        backend=store.backend,
        schema_version=store.schema_version(),
        total_events=total.count,
        head=head,
        processors=rows,
        horizon=horizon,
        total_estimated=not total.exact,
    )


def parked_counts(store: EventStore) -> dict[str, int]:
    """How many events each processor has parked (one grouped query)."""
    with store.transaction() as tx:
        rows = tx.fetchall("SELECT processor, count(*) FROM parked_events GROUP BY processor")
    return {str(name): int(n) for name, n in rows}


def _horizon(store: EventStore) -> dict[str, Any] | None:
    """What holds readers back, where the store can tell (PostgreSQL's reader horizon)."""
    found = store.reader_horizon()
    return None if found is None else dataclasses.asdict(found)


@dataclass(frozen=True, slots=True)
class Lag:
    """How far behind a processor is."""

    events: int
    seconds: float
    waiting: int
    #: True when ``events`` is an estimate (see the module docstring).
    estimated: bool = False


def lag(store: EventStore, position: int, types: Collection[str] | None, now: float,
        horizon: dict[str, Any] | None = None, *, exact_up_to: int = EXACT_LAG,
        decide: int | None = None) -> Lag:
    """The events after ``position`` (of ``types``) yet to process, and the age of the
    oldest; plus the events that exist but are not readable yet (``horizon``).

    The count is exact up to ``exact_up_to`` events, else an estimate (``estimated``).
    With ``decide``, an estimate that saw no more than ``decide`` events is replaced by
    the exact count, so whether the lag exceeds ``decide`` is never an estimate's call."""
    readable = store.estimate_count(after=position, types=types, exact_up_to=exact_up_to)
    if (decide is not None and not readable.exact
            and (readable.seen is None or readable.seen <= decide)):
        readable = CountEstimate(store.count(after=position, types=types), True)
    seconds = (_age(store.oldest_time_after(position, types=types), now)
               if readable.count else 0.0)
    waiting = int((horizon or {}).get("pending") or 0)
    if waiting:
        seconds = max(seconds, float((horizon or {}).get("age_seconds") or 0.0))
    return Lag(readable.count + waiting, seconds, waiting, not readable.exact)


def _processor_status(
    store: EventStore,
    processor: Processor,
    position: int,
    state: ProcessorState | None,
    parked: int,
    now: float,
    *,
    head: int,
    horizon: dict[str, Any] | None,
    limits: Limits,
) -> ProcessorStatus:
    from esctl_lib.processing.state import STALE_AFTER

    exact_up_to = max(EXACT_LAG, (limits.max_lag or 0) + 1)  # max_lag decided exactly
    behind = lag(store, position, processor.types(store.registry), now, horizon,
                 exact_up_to=exact_up_to, decide=limits.max_lag)
    stale_after = STALE_AFTER if limits.stale_after is None else limits.stale_after
    problems = [] if state is None else [
        p for p in (state.problem(now, stale_after=stale_after),) if p is not None]
    problems += _lag_problems(behind, limits)
    rebuild = rebuild_state(store, processor.name)
    if rebuild is not None and rebuild.state in (FAILED, INTERRUPTED):
        problems.append(f"its last rebuild {rebuild.state}: {rebuild.error or 'no error recorded'} "
                        "(the live read model was kept; run esctl replay again)")
    return ProcessorStatus(
        name=processor.name,
        kind=processor.kind,
        position=position,
        head=head,
        lag_events=behind.events,
        lag_seconds=behind.seconds,
        state=state.display_state(now, stale_after=stale_after) if state else "stopped",
        pid=state.pid if state is not None else None,
        host=state.host if state is not None else None,
        heartbeat_at=state.heartbeat_at if state is not None else None,
        last_error=state.last_error if state is not None else None,
        parked=parked,
        waiting_events=behind.waiting,
        heartbeat_age=state.heartbeat_age(now) if state is not None else None,
        traceback=state.traceback if state is not None else None,
        tables=tuple(processor.tables),
        rebuild=None if rebuild is None else rebuild.to_dict(),
        problems=tuple(problems),
        lag_estimated=behind.estimated,
    )


def _lag_problems(behind: Lag, limits: Limits) -> list[str]:
    waiting = f" ({behind.waiting} not yet readable)" if behind.waiting else ""
    found = []
    if limits.max_lag is not None and behind.events > limits.max_lag:
        about = "≈ " if behind.estimated else ""
        estimated = " (estimated)" if behind.estimated else ""
        found.append(f"lag {about}{behind.events} events{estimated}{waiting} exceeds "
                     f"{limits.max_lag}")
    if limits.max_lag_seconds is not None and behind.seconds > limits.max_lag_seconds:
        found.append(f"lag {behind.seconds:.1f} s{waiting} exceeds {limits.max_lag_seconds:g} s")
    return found


def _age(created_at: Any, now: float) -> float:
    if isinstance(created_at, dt.datetime):
        return max(0.0, round(now - created_at.timestamp(), 3))
    return 0.0
