"""Snapshots through the repository, on every backend: a load from a snapshot folds to
the same state as the whole history; snapshots are written when a save crosses a multiple
of the interval, never on a conflict, never of a stale shape, and never at the events'
expense."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esctl_lib import Aggregate, ConcurrencyError, Event, EventStore, Repository, handles


class SnapOpened(Event, type_name="snap_opened"):
    pass


class SnapDeposited(Event, type_name="snap_deposited"):
    pass


class SnapTagged(Event, type_name="snap_tagged"):
    pass


class Ledger(Aggregate):
    """State of JSON types only: the default capture applies."""

    snapshot_every = 10

    def __init__(self, aggregate_id: Any, events: Any = ()) -> None:
        self.opened = False
        self.balance = 0
        self.history: list[int] = []
        self.tags: dict[str, int] = {}
        super().__init__(aggregate_id, events)

    @handles(SnapOpened)
    def _opened(self, event: Event) -> None:
        self.opened = True

    @handles(SnapDeposited)
    def _deposited(self, event: Event) -> None:
        self.balance += event.body["amount"]
        self.history.append(event.body["amount"])

    @handles(SnapTagged)
    def _tagged(self, event: Event) -> None:
        self.tags[event.body["tag"]] = self.tags.get(event.body["tag"], 0) + 1

    def open(self) -> None:
        self.apply(SnapOpened(aggregate_id=self.id))

    def deposit(self, amount: int) -> None:
        self.apply(SnapDeposited(aggregate_id=self.id, body={"amount": amount}))

    def tag(self, tag: str) -> None:
        self.apply(SnapTagged(aggregate_id=self.id, body={"tag": tag}))


class PlainLedger(Ledger):
    snapshot_every = None


class LedgerV2(Ledger):
    """The same stream under a new state shape."""

    snapshot_version = 2

    @classmethod
    def snapshot_type(cls) -> str:
        return Ledger.snapshot_type()  # the same class, changed


class SetLedger(Ledger):
    """A set in its state: the default capture cannot keep it."""

    def __init__(self, aggregate_id: Any, events: Any = ()) -> None:
        self.seen: set[str] = set()
        super().__init__(aggregate_id, events)

    @handles(SnapTagged)
    def _seen(self, event: Event) -> None:
        self.seen.add(event.body["tag"])


class CustomSetLedger(SetLedger):
    """The same set, captured and restored by the class itself."""

    def snapshot_state(self) -> dict[str, Any]:
        state = super().snapshot_state()
        state["seen"] = sorted(self.seen)
        return state

    def restore_snapshot(self, state: dict[str, Any]) -> None:
        super().restore_snapshot({**state, "seen": set(state["seen"])})


def state(aggregate: Aggregate) -> dict[str, Any]:
    return {**vars(aggregate), "changes": []}


def fill(repo: Repository, cls: type[Ledger], count: int, *, per_save: int = 1,
         aggregate_id: str | None = None) -> str:
    """An aggregate of ``count`` events, saved ``per_save`` at a time."""
    ledger = cls(aggregate_id or str(uuid.uuid4()))
    ledger.open()
    done = 1
    while done < count:
        step = min(per_save - len(ledger.changes), count - done)
        for i in range(max(step, 0)):
            if (done + i) % 3 == 0:
                ledger.tag(f"t{(done + i) % 4}")
            else:
                ledger.deposit(done + i)
        done += max(step, 0)
        if len(ledger.changes) >= per_save or done >= count:
            repo.save(ledger)
    repo.save(ledger)
    assert ledger.version == count
    return ledger.id


def full_fold(store: EventStore, cls: type[Aggregate], aggregate_id: str) -> Aggregate:
    return cls(aggregate_id, store.read_aggregate(aggregate_id))


def test_snapshots_are_written_when_a_save_crosses_a_multiple(store: EventStore) -> None:
    repo = Repository(store)
    one_by_one = fill(repo, Ledger, 25)
    found = store.load_snapshot(one_by_one, Ledger.snapshot_type(), 1)
    assert found is not None and found.version == 20
    batched = fill(repo, Ledger, 25, per_save=7)  # saves end at 7, 14, 21, 25
    found = store.load_snapshot(batched, Ledger.snapshot_type(), 1)
    assert found is not None and found.version == 21
    short = fill(repo, Ledger, 9)
    assert store.load_snapshot(short, Ledger.snapshot_type(), 1) is None
    infos = store.snapshots()
    assert [(i.aggregate_type, i.count) for i in infos] == [(Ledger.snapshot_type(), 2)]
    assert infos[0].bytes > 0 and infos[0].newest > 0


def test_a_load_from_a_snapshot_folds_only_the_tail_to_the_full_state(
    store: EventStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = Repository(store)
    aggregate_id = fill(repo, Ledger, 37, per_save=4)
    folded: list[int] = []
    original = Ledger._mutate

    def counting(self: Ledger, event: Event) -> None:
        folded.append(event.version or 0)
        original(self, event)

    monkeypatch.setattr(Ledger, "_mutate", counting)
    loaded = repo.load(Ledger, aggregate_id)
    # Saves end at 4, 8, ... 32, 36, 37: the one that crossed 30 ended at 32.
    assert folded == [33, 34, 35, 36, 37]
    monkeypatch.undo()
    assert state(loaded) == state(full_fold(store, Ledger, aggregate_id))
    assert loaded.version == 37


def test_a_class_without_snapshot_every_never_reads_or_writes_snapshots(
    store: EventStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = Repository(store)
    aggregate_id = fill(repo, PlainLedger, 30)
    assert store.snapshots() == []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no snapshot query for a class without snapshot_every")

    monkeypatch.setattr(type(store), "read_from_snapshot", refuse)
    assert repo.load(PlainLedger, aggregate_id).version == 30


def test_a_snapshot_of_another_snapshot_version_is_ignored_then_replaced(
    store: EventStore,
) -> None:
    repo = Repository(store)
    aggregate_id = fill(repo, Ledger, 15)
    old = store.load_snapshot(aggregate_id, Ledger.snapshot_type(), 1)
    assert old is not None and old.version == 10
    # Tamper with the v1 snapshot: a v2 load must never see it.
    store.drop_snapshots()
    store.save_snapshot(type(old)(aggregate_id, old.aggregate_type, 10, 1,
                                  {**old.state, "balance": -999}))
    loaded = repo.load(LedgerV2, aggregate_id)
    assert state(loaded) == state(full_fold(store, LedgerV2, aggregate_id))
    assert store.load_snapshot(aggregate_id, Ledger.snapshot_type(), 2) is None
    for _ in range(5):
        loaded.deposit(1)
    repo.save(loaded)  # crosses 20: a v2 snapshot replaces the v1 one
    assert store.load_snapshot(aggregate_id, Ledger.snapshot_type(), 1) is None
    new = store.load_snapshot(aggregate_id, Ledger.snapshot_type(), 2)
    assert new is not None and new.version == 20 and new.state["balance"] != -999


def test_an_older_snapshot_never_replaces_a_newer_one(store: EventStore) -> None:
    repo = Repository(store)
    aggregate_id = fill(repo, Ledger, 20)
    newest = store.load_snapshot(aggregate_id, Ledger.snapshot_type(), 1)
    assert newest is not None and newest.version == 20
    store.save_snapshot(type(newest)(aggregate_id, newest.aggregate_type, 10, 1, {"x": 1}))
    kept = store.load_snapshot(aggregate_id, Ledger.snapshot_type(), 1)
    assert kept is not None and kept.version == 20 and kept.state == newest.state


def test_a_conflicting_save_writes_no_snapshot(store: EventStore) -> None:
    repo = Repository(store)
    aggregate_id = fill(repo, Ledger, 8)
    mine = repo.load(Ledger, aggregate_id)
    theirs = repo.load(Ledger, aggregate_id)
    theirs.deposit(1)
    repo.save(theirs)  # version 9
    for _ in range(3):
        mine.deposit(100)
    with pytest.raises(ConcurrencyError):
        repo.save(mine)  # would cross 10
    assert store.load_snapshot(aggregate_id, Ledger.snapshot_type(), 1) is None
    assert store.aggregate_version(aggregate_id) == 9
    assert len(mine.changes) == 3


def test_state_the_encoder_cannot_keep_skips_the_snapshot_with_a_warning(
    store: EventStore, caplog: pytest.LogCaptureFixture,
) -> None:
    repo = Repository(store)
    with caplog.at_level(logging.WARNING, logger="esctl.repository"):
        aggregate_id = fill(repo, SetLedger, 12)
    assert store.aggregate_version(aggregate_id) == 12  # the events are saved
    assert store.load_snapshot(aggregate_id, SetLedger.snapshot_type(), 1) is None
    assert "state field 'seen' holds set" in caplog.text
    assert "snapshot_state()" in caplog.text


def test_snapshot_state_and_restore_snapshot_can_be_overridden(store: EventStore) -> None:
    repo = Repository(store)
    aggregate_id = fill(repo, CustomSetLedger, 23)
    snap = store.load_snapshot(aggregate_id, CustomSetLedger.snapshot_type(), 1)
    assert snap is not None and snap.version == 20
    assert snap.state["seen"] == sorted(snap.state["seen"])
    loaded = repo.load(CustomSetLedger, aggregate_id)
    assert isinstance(loaded.seen, set)
    assert state(loaded) == state(full_fold(store, CustomSetLedger, aggregate_id))


def test_a_snapshot_that_cannot_be_restored_falls_back_to_the_full_history(
    store: EventStore, caplog: pytest.LogCaptureFixture,
) -> None:
    repo = Repository(store)
    aggregate_id = fill(repo, CustomSetLedger, 12)
    store.drop_snapshots()
    store.save_snapshot(_snapshot(aggregate_id, CustomSetLedger, 10, {"x": 1}))
    with caplog.at_level(logging.WARNING, logger="esctl.repository"):
        loaded = repo.load(CustomSetLedger, aggregate_id)
    assert "restore_snapshot failed" in caplog.text
    assert state(loaded) == state(full_fold(store, CustomSetLedger, aggregate_id))


def _snapshot(aggregate_id: str, cls: type[Aggregate], version: int,
              data: dict[str, Any]) -> Any:
    from esctl_lib.stores.base import Snapshot

    return Snapshot(aggregate_id, cls.snapshot_type(), version, cls.snapshot_version, data)


def test_the_repository_overrides_the_interval_by_path_or_class_name(store: EventStore) -> None:
    by_name = Repository(store, snapshot_every={"PlainLedger": 5})
    first = fill(by_name, PlainLedger, 12)
    snap = store.load_snapshot(first, PlainLedger.snapshot_type(), 1)
    assert snap is not None and snap.version == 10
    by_path = Repository(store, snapshot_every={Ledger.snapshot_type(): 0})
    second = fill(by_path, Ledger, 12)
    assert store.load_snapshot(second, Ledger.snapshot_type(), 1) is None
    assert by_path.snapshot_interval(Ledger) == 0
    assert Repository(store).snapshot_interval(Ledger) == 10


def test_with_a_transaction_the_snapshot_commits_or_rolls_back_with_the_events(
    store: EventStore,
) -> None:
    repo = Repository(store)
    aggregate_id = fill(repo, Ledger, 9)
    ledger = repo.load(Ledger, aggregate_id)
    ledger.deposit(5)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.transaction() as tx:
        repo.save(ledger, transaction=tx)
        raise Boom
    assert store.aggregate_version(aggregate_id) == 9
    assert store.load_snapshot(aggregate_id, Ledger.snapshot_type(), 1) is None
    ledger = repo.load(Ledger, aggregate_id)
    ledger.deposit(5)
    with store.transaction() as tx:
        repo.save(ledger, transaction=tx)
    snap = store.load_snapshot(aggregate_id, Ledger.snapshot_type(), 1)
    assert snap is not None and snap.version == 10


def test_a_failed_snapshot_write_keeps_the_events(
    store: EventStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    from esctl_lib.errors import StoreUnavailableError

    def fail(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailableError("connection lost")

    monkeypatch.setattr(type(store), "save_snapshot", fail)
    repo = Repository(store)
    with caplog.at_level(logging.WARNING, logger="esctl.repository"):
        aggregate_id = fill(repo, Ledger, 11)
    assert store.aggregate_version(aggregate_id) == 11
    assert "connection lost" in caplog.text
    assert state(repo.load(Ledger, aggregate_id)) == state(full_fold(store, Ledger, aggregate_id))


def test_drop_snapshots_by_type(store: EventStore) -> None:
    repo = Repository(store)
    fill(repo, Ledger, 10)
    fill(repo, Ledger, 10)
    other = fill(repo, CustomSetLedger, 10)
    assert store.drop_snapshots(Ledger.snapshot_type()) == 2
    assert [i.aggregate_type for i in store.snapshots()] == [CustomSetLedger.snapshot_type()]
    assert store.drop_snapshots("no.such:Type") == 0
    assert store.drop_snapshots() == 1
    assert store.snapshots() == []
    assert repo.load(CustomSetLedger, other).version == 10


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(saves=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=8),
       every=st.integers(min_value=1, max_value=12))
def test_property_a_load_from_snapshots_equals_the_full_fold(
    store: EventStore, saves: list[int], every: int,
) -> None:
    repo = Repository(store, snapshot_every={"Ledger": every})
    ledger = Ledger(str(uuid.uuid4()))
    ledger.open()
    n = 0
    for size in saves:
        for _ in range(size):
            n += 1
            if n % 3 == 0:
                ledger.tag(f"t{n % 5}")
            else:
                ledger.deposit(n)
        repo.save(ledger)
        loaded = repo.load(Ledger, ledger.id)
        assert state(loaded) == state(full_fold(store, Ledger, ledger.id))
        assert state(loaded) == state(ledger)


def test_a_save_through_table_helpers_keeps_its_events(store: EventStore) -> None:
    """``Tables`` (what handlers and ``open_tables`` give) has no snapshot method: the save
    works and the snapshot waits for a later crossing."""
    from esctl_lib import open_tables

    repo = Repository(store)
    aggregate_id = fill(repo, Ledger, 9)
    ledger = repo.load(Ledger, aggregate_id)
    ledger.deposit(1)
    with open_tables(store) as tx:
        repo.save(ledger, transaction=tx)  # type: ignore[arg-type]
    assert store.aggregate_version(aggregate_id) == 10
    assert state(repo.load(Ledger, aggregate_id)) == state(full_fold(store, Ledger, aggregate_id))
