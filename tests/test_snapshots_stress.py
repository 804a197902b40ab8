"""Writers racing on one aggregate with snapshots: every event is kept exactly once, the
snapshot kept is the newest one written, and a load from it equals the full fold."""

from __future__ import annotations

import threading

from esctl_lib import ConcurrencyError, Repository
from tests.backends import StoreSpec
from tests.test_snapshots import Ledger, fill, full_fold, state

WRITERS = 4
SAVES_EACH = 15


def test_racing_writers_keep_every_event_and_a_true_snapshot(
    shared_store_spec: StoreSpec,
) -> None:
    first = shared_store_spec.open()
    aggregate_id = fill(Repository(first, snapshot_every={"Ledger": 3}), Ledger, 1)
    conflicts = [0] * WRITERS
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def writer(n: int) -> None:
        try:
            repo = Repository(shared_store_spec.open(), snapshot_every={"Ledger": 3})
            start.wait()
            for i in range(SAVES_EACH):
                while True:
                    ledger = repo.load(Ledger, aggregate_id)
                    ledger.deposit(1000 * n + i)
                    if i % 2:
                        ledger.tag(f"w{n}")
                    try:
                        repo.save(ledger)
                        break
                    except ConcurrencyError:
                        conflicts[n] += 1
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    expected = 1 + WRITERS * (SAVES_EACH + SAVES_EACH // 2)
    history = first.read_aggregate(aggregate_id)
    assert len(history) == expected
    assert [e.version for e in history] == list(range(1, expected + 1))
    deposits = sorted(e.body["amount"] for e in history if e.type == "snap_deposited")
    assert deposits == sorted(1000 * n + i for n in range(WRITERS) for i in range(SAVES_EACH))
    snap = first.load_snapshot(aggregate_id, Ledger.snapshot_type(), 1)
    assert snap is not None and expected - 2 <= snap.version <= expected
    # The snapshot kept is the state at its version, whoever wrote it.
    at_version = Ledger(aggregate_id, history[:snap.version])
    assert snap.state == {k: v for k, v in state(at_version).items()
                          if k not in ("id", "version", "changes")}
    loaded = Repository(first, snapshot_every={"Ledger": 3}).load(Ledger, aggregate_id)
    assert state(loaded) == state(full_fold(first, Ledger, aggregate_id))
