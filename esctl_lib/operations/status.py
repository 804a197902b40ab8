"""``esctl status``: the store, and per processor its position, lag, state and errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from esctl_lib.stores.base import EventStore

if TYPE_CHECKING:
    from esctl_lib.processing.processor import Processor
    from esctl_lib.processing.state import ProcessorState


@dataclass(frozen=True, slots=True)
class ProcessorStatus:
    """One processor: where it is, how far behind, and what its runner reports."""

    name: str
    kind: str
    #: Its tracker: the last position processed (or scanned past).
    position: int
    #: The newest event id among the types it handles.
    head: int
    #: Events of its types after its position.
    lag_events: int
    #: Age in seconds of the oldest event it has yet to process (0 when caught up).
    lag_seconds: float
    #: running | idle | failing | parked | standby | starting | stopped | stopped (stale)
    state: str
    pid: int | None
    host: str | None
    heartbeat_at: float | None
    last_error: str | None
    parked: int

    @property
    def failing(self) -> bool:
        """True when its runner reports it failing."""
        return self.state == "failing"


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

    @property
    def failing(self) -> bool:
        """True when any processor is failing (``esctl status`` then exits 1)."""
        return any(p.failing for p in self.processors)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``esctl status --json``)."""
        return {
            "store": {"url": self.store_url, "backend": self.backend,
                      "schema_version": self.schema_version,
                      "total_events": self.total_events, "head": self.head},
            "failing": self.failing,
            "horizon": self.horizon,
            "processors": [
                {**{f: getattr(p, f) for f in p.__slots__}, "failing": p.failing}
                for p in self.processors
            ],
        }


def status_report(
    store: EventStore, processors: Iterable[Processor], *, now: float | None = None
) -> StatusReport:
    """Gather the status of ``store`` and ``processors`` (the store URL is masked)."""
    from esctl_lib.processing.parking import list_parked
    from esctl_lib.processing.state import read_states

    now = time.time() if now is None else now
    states = {s.name: s for s in read_states(store)}
    trackers = store.trackers()
    parked: dict[str, int] = {}
    for event in list_parked(store):
        parked[event.processor] = parked.get(event.processor, 0) + 1
    rows = [
        _processor_status(store, p, trackers.get(p.name, 0), states.get(p.name),
                          parked.get(p.name, 0), now)
        for p in processors
    ]
    return StatusReport(
        store_url=store.display_url,
        backend=store.backend,
        schema_version=store.schema_version(),
        total_events=store.count(),
        head=store.latest_position(),
        processors=rows,
        horizon=_horizon(store),
    )


def _horizon(store: EventStore) -> dict[str, Any] | None:
    """What holds readers back, where the store can tell (PostgreSQL's reader horizon)."""
    found = store.reader_horizon()
    return None if found is None else dataclasses.asdict(found)


def _processor_status(
    store: EventStore,
    processor: Processor,
    position: int,
    state: ProcessorState | None,
    parked: int,
    now: float,
) -> ProcessorStatus:
    types = processor.types(store.registry)
    lag = store.count(after=position, types=types)
    return ProcessorStatus(
        name=processor.name,
        kind=processor.kind,
        position=position,
        head=store.latest_position(types=types),
        lag_events=lag,
        lag_seconds=_age(store.oldest_time_after(position, types=types), now) if lag else 0.0,
        state=state.display_state(now) if state is not None else "stopped",
        pid=state.pid if state is not None else None,
        host=state.host if state is not None else None,
        heartbeat_at=state.heartbeat_at if state is not None else None,
        last_error=state.last_error if state is not None else None,
        parked=parked,
    )


def _age(created_at: Any, now: float) -> float:
    if isinstance(created_at, dt.datetime):
        return max(0.0, round(now - created_at.timestamp(), 3))
    return 0.0
