"""Instances (or partitions) of one processor starting at once set up its tables at once:
on PostgreSQL two ``CREATE TABLE IF NOT EXISTS`` of one name collide on the catalog
(``pg_type_typname_nsp_index``) unless their transactions take turns
(``Transaction.lock_schema_changes``). Seen as a partition failing its first batch."""

from __future__ import annotations

import threading

from esctl_lib import Event, handles
from esctl_lib.processing import Projector
from tests.postgres.conftest import PgSpec

ROUNDS = 8
INSTANCES = 4


class SetUpTogether(Event, type_name="set_up_together"):
    pass


def projector(round_: int) -> Projector:
    class Wide(Projector):
        name = f"wide_{round_}"
        tables = {f"wide_{round_}_{i}": f"CREATE TABLE IF NOT EXISTS wide_{round_}_{i} "
                                         "(k TEXT PRIMARY KEY, n BIGINT NOT NULL)"
                  for i in range(4)}

        @handles(SetUpTogether)
        def _on(self, event: Event, tx: object) -> None:
            pass

    return Wide()


def test_instances_setting_up_at_once_all_succeed(pg: PgSpec) -> None:
    stores = [pg.open() for _ in range(INSTANCES)]
    for round_ in range(ROUNDS):
        barrier = threading.Barrier(INSTANCES)
        errors: list[BaseException] = []

        def set_up(index: int, round_: int = round_, barrier: threading.Barrier = barrier,
                   errors: list[BaseException] = errors) -> None:
            try:
                barrier.wait(30)
                projector(round_).setup(stores[index])
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=set_up, args=(i,)) for i in range(INSTANCES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == [], f"round {round_}: {errors[0]}"
    with stores[0].transaction() as tx:
        rows = tx.fetchall("SELECT count(*) FROM information_schema.tables "
                           "WHERE table_schema = %s AND table_name LIKE 'wide_%%'", (pg.schema,))
    assert rows == [(ROUNDS * 4,)]
