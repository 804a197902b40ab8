"""Shadow tables (:meth:`EventStore.table_shadow`): built beside the live table under its
declared name, swapped in atomically, dropped on failure."""

from __future__ import annotations

import pytest

from esctl_lib.stores.base import EventStore
from esctl_lib.stores.shadow import TableShadow
from esctl_lib.testing.contract.base import ContractBase

TABLE = "conf_shadowed"
DDL = [f"CREATE TABLE IF NOT EXISTS {TABLE} (k TEXT PRIMARY KEY, v INTEGER NOT NULL)",
       f"CREATE INDEX IF NOT EXISTS {TABLE}_v ON {TABLE} (v)"]


def _rows(store: EventStore) -> list[tuple[str, int]]:
    with store.transaction() as tx:
        return [(str(k), int(v)) for k, v in tx.fetchall(f"SELECT k, v FROM {TABLE} ORDER BY k")]


class ShadowTablesContract(ContractBase):
    """What an online rebuild needs from a backend."""

    def _live(self, store: EventStore) -> None:
        with store.transaction() as tx:
            for statement in DDL:
                tx.execute(statement)
            tx.execute(f"INSERT INTO {TABLE} (k, v) VALUES ('live', 1)")

    def _fill_shadow(self, store: EventStore) -> TableShadow:
        shadow = store.table_shadow("conf_proc", [TABLE])
        with store.transaction() as tx:
            shadow.prepare(tx)
            redirected = shadow.redirect(tx)
            for statement in DDL:
                redirected.execute(statement)
        with store.transaction() as tx:
            p = tx.placeholder
            shadow.redirect(tx).execute(
                f"INSERT INTO {TABLE} (k, v) VALUES ({p}, {p})", ("new", 2))
        return shadow

    def test_a_shadow_is_written_under_the_declared_name_beside_the_live_table(
        self, store: EventStore
    ) -> None:
        self._live(store)
        shadow = store.table_shadow("conf_proc", [TABLE])
        self._fill_shadow(store)
        assert _rows(store) == [("live", 1)]
        with store.transaction() as tx:
            assert shadow.redirect(tx).fetchall(f"SELECT k FROM {TABLE}") == [("new",)]

    def test_a_swap_replaces_the_live_table_in_the_callers_transaction(
        self, store: EventStore
    ) -> None:
        self._live(store)
        shadow = self._fill_shadow(store)
        with store.transaction() as tx:
            assert shadow.swap_in(tx)
            tx.set_tracker("conf_proc", 7)
        assert _rows(store) == [("new", 2)]
        assert store.get_tracker("conf_proc") == 7
        with store.transaction() as tx:  # the declared DDL is a no-op on the new table
            for statement in DDL:
                tx.execute(statement)

    def test_a_swap_rolled_back_leaves_the_live_table(self, store: EventStore) -> None:
        self._live(store)
        shadow = self._fill_shadow(store)
        with pytest.raises(RuntimeError), store.transaction() as tx:
            assert shadow.swap_in(tx)
            raise RuntimeError("killed before the commit")
        assert _rows(store) == [("live", 1)]

    def test_a_discarded_shadow_leaves_the_live_table(self, store: EventStore) -> None:
        self._live(store)
        shadow = self._fill_shadow(store)
        with store.transaction() as tx:
            shadow.discard(tx)
        assert _rows(store) == [("live", 1)]
        again = self._fill_shadow(store)  # and a new shadow starts empty
        with store.transaction() as tx:
            assert again.swap_in(tx)
        assert _rows(store) == [("new", 2)]
