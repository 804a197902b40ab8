"""An event id whose transaction is still open is no place in the stream yet.

Transaction B writes first, A appends event 1 and stays open, B appends event 2 and
commits: event 2 is readable (B is older than A), event 1 is not, and once A commits it
lies after event 2. A tracker put at 1 now would later jump past event 2.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from esctl_lib import InvalidEventError, reset_processor
from esctl_lib.processing import is_readable, wait_for
from esctl_lib.stores.postgres import PostgresStore
from esctl_lib.testing import eventually
from esctl_lib.testing.contract import ConfItemAdded
from tests.postgres.conftest import PgSpec

PROCESSOR = "pg_in_flight"


@pytest.fixture
def in_flight(pg: PgSpec) -> Iterator[tuple[PostgresStore, int, int]]:
    """The store, the id of an event whose transaction is open, and a readable id after it."""
    store = pg.open()
    open_a = store.transaction()
    try:
        with store.transaction() as b:
            b.will_append()  # B appends after its first write
            b.reset_tracker("pg_place", 0)  # B takes its place in the stream first
            a = open_a.__enter__()
            pending = a.append([ConfItemAdded(aggregate_id=_id(1))])[0]
            done = b.append([ConfItemAdded(aggregate_id=_id(2))])[0]
        assert pending.id is not None and done.id is not None
        assert pending.id < done.id
        eventually(lambda: store.latest_position() == done.id, timeout=30,
                   what="the event of the older transaction to be readable")
        yield store, pending.id, done.id
    finally:
        open_a.__exit__(None, None, None)


def _id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def test_the_key_of_an_id_still_in_flight_is_not_its_own(
    in_flight: tuple[PostgresStore, int, int],
) -> None:
    store, pending, done = in_flight
    keys = store.stream_keys([pending, done])
    assert keys[pending].id != pending
    assert keys[done].id == done


def test_an_event_whose_transaction_is_open_is_not_readable(
    in_flight: tuple[PostgresStore, int, int],
) -> None:
    store, pending, done = in_flight
    assert is_readable(store, done)
    assert not is_readable(store, pending)
    store.reset_tracker(PROCESSOR, done)
    assert not wait_for(store, PROCESSOR, pending, timeout=0)


def test_a_reset_to_an_id_still_in_flight_is_refused(
    in_flight: tuple[PostgresStore, int, int],
) -> None:
    store, pending, _ = in_flight
    with pytest.raises(InvalidEventError, match=f"position {pending} is not the id of a "
                                                "stored event"):
        reset_processor(store, PROCESSOR, position=pending)
    assert store.get_tracker(PROCESSOR) == 0
