"""``esctl skip`` racing a batch that is processing the same event (PostgreSQL, where the
two transactions can interleave; SQLite's write lock serialises them).

The skip commits while the batch's handlers run, before the batch moves its tracker: the
batch must then find the event parked and be processed again without it, so the event is
parked and never applied."""

from __future__ import annotations

from esctl_lib import Event, skip_event
from esctl_lib.processing import list_parked, process_available
from tests.postgres.conftest import PgSpec
from tests.processing.helpers import ItemCounts, add_one, counts


def test_an_event_skipped_while_its_batch_runs_is_parked_and_never_applied(
    pg: PgSpec,
) -> None:
    store = pg.open()
    first, target, last = (add_one(store) for _ in range(3))
    raced: list[int] = []

    def skip_it_meanwhile(event: Event) -> bool:
        if event.id == target.id and not raced:
            skip_event(pg.open(), ItemCounts.name, event.id or 0, reason="raced")
            raced.append(event.id or 0)
        return False  # the handler itself never fails

    projector = ItemCounts(fail_when=skip_it_meanwhile)
    process_available(projector, store)
    assert raced == [target.id]
    [parked] = list_parked(store, projector.name)
    assert (parked.event_id, parked.error) == (target.id, "skipped by hand: raced")
    assert store.get_tracker(projector.name) == last.id
    assert counts(store) == {first.aggregate_id: 1, last.aggregate_id: 1}
