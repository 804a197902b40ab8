"""A batch that appends calls ``will_append()`` in its write transaction before any other
write (PostgreSQL's horizon needs that: ``Transaction.will_append``).

The calls are observed on the real transaction class of each backend (wrapped, still run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from esctl_lib import Event, EventStore, ProcessingError, handles
from esctl_lib.processing import BatchTransaction, process_available
from tests.processing.handlers_outside_apps import HotAdded, HotNoticed, HotReactor
from tests.processing.handlers_outside_support import add_hot, noticed, rows

WATCHED = ("will_append", "execute", "executemany", "append", "advance_tracker",
           "set_tracker", "reset_tracker")


def watch(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> dict[int, list[str]]:
    """Transaction id → the watched calls made on it, in order."""
    with store.transaction() as tx:
        cls = type(tx)
    calls: dict[int, list[str]] = {}
    seen: list[object] = []  # kept alive, so that no later transaction reuses an id

    def wrap(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
            if id(self) not in calls:
                seen.append(self)
            calls.setdefault(id(self), []).append(name)
            return real(self, *args, **kwargs)
        return recorded

    for name in WATCHED:
        monkeypatch.setattr(cls, name, wrap(name, getattr(cls, name)))
    return calls


def appending(calls: dict[int, list[str]]) -> list[list[str]]:
    return [names for names in calls.values() if "append" in names]


def test_the_final_transaction_declares_its_appends_first(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = add_hot(store, 4)
    calls = watch(store, monkeypatch)
    assert process_available(HotReactor(), store) == 4
    batches = appending(calls)
    assert len(batches) == 1  # one short write transaction for the batch
    assert batches[0][0] == "will_append"
    assert "advance_tracker" in batches[0]  # the tracker commits with them
    assert noticed(store) == {e.uuid: 1 for e in stored}


class WritesReadsEmits(HotReactor):
    """Writes a row, reads it back (the write transaction opens there), then emits."""

    name = "hot_writes_reads_emits"

    def __init__(self) -> None:
        super().__init__()
        self.found: list[int] = []

    @handles(HotAdded)
    def _added(self, event: Event, tx: BatchTransaction) -> None:
        n = int(event.body["n"])
        tx.insert("hot_reactor_rows", {"n": n, "aggregate_id": event.aggregate_id})
        self.found.append(len(tx.select("hot_reactor_rows", where={"n": n})))
        self.emit(HotNoticed(aggregate_id=event.aggregate_id))


def test_a_reactor_reading_its_writes_declares_its_appends_before_them(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = add_hot(store, 3)
    calls = watch(store, monkeypatch)
    reactor = WritesReadsEmits()
    assert process_available(reactor, store) == 3
    assert reactor.found == [1, 1, 1]
    batches = appending(calls)
    assert len(batches) == 1
    assert batches[0][0] == "will_append"
    assert rows(store, "hot_reactor_rows") == [0, 1, 2]
    assert noticed(store) == {e.uuid: 1 for e in stored}


def test_a_reactor_batch_rerun_with_writes_at_once_declares_its_appends_first(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed recorded write reruns the batch with the write transaction open throughout
    (to pin the error): that transaction declares its appends first too."""
    stored = add_hot(store, 3)
    with store.transaction() as tx:
        HotReactor().create_tables(tx)
        tx.execute("INSERT INTO hot_reactor_rows (n, aggregate_id) VALUES (1, 'taken')")
    calls = watch(store, monkeypatch)
    with pytest.raises(ProcessingError) as raised:
        process_available(HotReactor(), store)
    assert raised.value.event_id == stored[1].id  # pinned on the right event
    firsts = [names[0] for names in calls.values() if "advance_tracker" in names]
    assert firsts and set(firsts) == {"will_append"}
    assert noticed(store) == {stored[0].uuid: 1}
