"""Run a projector or reactor over a list of events and see what it wrote and emitted."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from esctl_lib.events import Event
from esctl_lib.processing import Processor, RetryPolicy, process_available
from esctl_lib.stores import open_store
from esctl_lib.stores.base import EventStore, Transaction


@dataclass(frozen=True, slots=True)
class ProcessorRun:
    """What one :func:`process_events` call left behind.

    ``tables`` maps each table the processor owns to its rows (dicts, sorted by every
    column); ``emitted`` holds the events the processor appended, in stream order;
    ``events`` the given events as stored (with ids and versions); ``handled`` how many
    of them had a handler.
    """

    tables: dict[str, list[dict[str, Any]]]
    emitted: list[Event]
    events: list[Event]
    handled: int
    store: EventStore = field(repr=False, compare=False)

    def rows(self, table: str | None = None) -> list[dict[str, Any]]:
        """The rows of ``table`` (of the processor's only table when not given)."""
        if table is None:
            if len(self.tables) != 1:
                raise ValueError(f"name one of the tables: {', '.join(self.tables) or 'none'}")
            table = next(iter(self.tables))
        return self.tables[table]


def process_events(
    processor: Processor,
    events: Iterable[Event],
    *,
    store: EventStore | None = None,
    retry: RetryPolicy | None = None,
) -> ProcessorRun:
    """Append ``events`` to a store, run ``processor`` until it has caught up, read back.

    The store is a fresh ``memory://`` one unless ``store`` is given (a temporary SQLite
    file, say); it is set up first, and left open for the caller's further looks through
    :attr:`ProcessorRun.store`. Each event is appended on its own, so ids and versions are
    the store's. The processor runs the way ``esctl run --once`` runs it (setup, batches,
    tracker), failing at the first handler error with a :class:`ProcessingError` unless
    ``retry`` says otherwise.
    """
    store = store if store is not None else open_store("memory://")
    store.setup()
    stored: list[Event] = []
    for event in events:
        stored.extend(store.append([event]))
    head = store.latest_position()
    handled = process_available(processor, store, retry=retry)
    emitted = list(store.iter_range(head))
    with store.transaction() as tx:
        tables = {name: _rows(tx, name) for name in processor.tables}
    return ProcessorRun(tables=tables, emitted=emitted, events=stored, handled=handled,
                        store=store)


def _rows(tx: Transaction, table: str) -> list[dict[str, Any]]:
    columns = _columns(tx, table)
    order = ", ".join(str(i) for i in range(1, len(columns) + 1))
    names = ", ".join(_quote(c) for c in columns)
    rows = tx.fetchall(f"SELECT {names} FROM {_quote(table)} ORDER BY {order}")
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _columns(tx: Transaction, table: str) -> Sequence[str]:
    if tx.placeholder == "?":  # SQLite and the memory store
        found = tx.fetchall("SELECT name FROM pragma_table_info(?) ORDER BY cid", (table,))
    else:
        found = tx.fetchall(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "AND table_schema = current_schema() ORDER BY ordinal_position", (table,))
    return [str(row[0]) for row in found]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
