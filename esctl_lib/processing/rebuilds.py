"""The record of each processor's latest online rebuild (``processor_rebuilds``).

What :func:`rebuild_state` needs to read a record, apart from the rebuild itself
(:mod:`esctl_lib.processing.rebuild`), so that ``esctl status``, which reads every
processor's record, does not load the rebuild machinery.
"""

from __future__ import annotations

import weakref
from dataclasses import asdict, dataclass
from typing import Any

from esctl_lib.errors import StoreError
from esctl_lib.processing.tables import Tables
from esctl_lib.stores.base import EventStore

#: The table of rebuild records, one row per processor (its latest rebuild).
RECORDS = "processor_rebuilds"
_RECORDS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {RECORDS} (processor TEXT PRIMARY KEY, state TEXT NOT NULL, "
    "position BIGINT NOT NULL, head BIGINT NOT NULL, events BIGINT NOT NULL, "
    "handled BIGINT NOT NULL, holder TEXT, started_at DOUBLE PRECISION NOT NULL, "
    "updated_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION, error TEXT)"
)
_ENSURED: weakref.WeakSet[EventStore] = weakref.WeakSet()
#: The states of a rebuild record.
RUNNING, SUCCEEDED, FAILED, INTERRUPTED = "running", "succeeded", "failed", "interrupted"


@dataclass(frozen=True, slots=True)
class RebuildState:
    """A processor's latest rebuild, as recorded.

    ``state``: ``"running"``, ``"succeeded"``, ``"failed"`` (``error`` says why) or
    ``"interrupted"`` (Ctrl-C, or the rebuilding process is gone: it was recorded as
    running but nobody holds its lock). ``position`` is the shadow's position (the
    tracker's after a success), ``head`` the store's head when last recorded, ``events``
    how many events it has read, ``handled`` how many had handlers; times are Unix
    seconds; ``holder`` is ``"pid N on host"``.
    """

    processor: str
    state: str
    position: int
    head: int
    events: int
    handled: int
    holder: str | None
    started_at: float
    updated_at: float
    finished_at: float | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (for JSON)."""
        return asdict(self)


def rebuild_lock_name(name: str) -> str:
    """The lock a rebuild of processor ``name`` holds."""
    return f"{name}.rebuild"


def ensure_records_table(store: EventStore) -> None:
    """Create the table of rebuild records if it is missing (once per store object)."""
    if store in _ENSURED:
        return
    with store.transaction() as tx:
        tx.execute(_RECORDS_DDL)
    _ENSURED.add(store)


def rebuild_state(store: EventStore, name: str) -> RebuildState | None:
    """Processor ``name``'s latest rebuild (None when it never had one).

    A rebuild recorded as running whose lock nobody holds was killed: it is reported as
    ``"interrupted"``.
    """
    try:
        with store.transaction() as tx:
            rows = Tables(tx).select(RECORDS, where={"processor": name})
    except StoreError:  # no table: this store never recorded a rebuild (reads create nothing)
        return None
    if not rows:
        return None
    row = rows[0]
    state = RebuildState(
        processor=name, state=str(row["state"]), position=int(row["position"]),
        head=int(row["head"]), events=int(row["events"]), handled=int(row["handled"]),
        holder=row["holder"], started_at=float(row["started_at"]),
        updated_at=float(row["updated_at"]),
        finished_at=None if row["finished_at"] is None else float(row["finished_at"]),
        error=row["error"])
    if state.state == RUNNING and not _rebuild_is_live(store, name):
        return RebuildState(**{**asdict(state), "state": INTERRUPTED,
                               "error": "the rebuilding process is gone (killed?)"})
    return state


def _rebuild_is_live(store: EventStore, name: str) -> bool:
    from esctl_lib.processing.locks import lock_holder

    return lock_holder(store, rebuild_lock_name(name)) is not None
