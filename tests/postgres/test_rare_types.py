"""A reader filtered on a rare type probes the (type, tx, id) index instead of scanning."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from esctl_lib import Event
from esctl_lib.stores.postgres import PostgresStore
from esctl_lib.stores.postgres.reads import latest_of_types_query, read_types_query
from tests.postgres.conftest import PgSpec

COMMON = 20_000


@pytest.fixture
def filled(pg: PgSpec) -> PostgresStore:
    """20,000 common events with one rare event in the middle, analyzed."""
    store = pg.open()
    agg = str(uuid.uuid4())
    for start in range(0, COMMON, 1000):
        store.append([Event(aggregate_id=agg, type="pg_common", body={"i": start + i})
                      for i in range(1000)])
        if start == COMMON // 2:
            store.append([Event(aggregate_id=str(uuid.uuid4()), type="pg_rare")])
    with store.transaction() as tx:
        tx.execute("ANALYZE events")
    return store


def plan(store: PostgresStore, query: Any, params: dict[str, Any]) -> dict[str, Any]:
    with store.connection() as conn:
        row = conn.execute(
            psycopg.sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) ") + query, params, prepare=False
        ).fetchone()
    assert row is not None
    data = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    return dict(data[0]["Plan"])


def scans(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [node] if "Relation Name" in node else []
    for child in node.get("Plans", []):
        found.extend(scans(child))
    return found


def test_reading_a_rare_type_from_the_start_touches_only_its_index_entries(
    filled: PostgresStore,
) -> None:
    head = filled.stream_key(filled.latest_position())
    params = {"t0": "pg_rare", "ptx": "0", "pid": 0, "btx": str(head.tx), "bid": head.id,
              "n": 1000}
    [scan] = scans(plan(filled, read_types_query(1), params))
    assert scan["Index Name"] == "events_type_tx_id"
    assert scan["Actual Rows"] == 1
    assert scan.get("Rows Removed by Filter", 0) == 0


def test_the_newest_rare_event_is_found_by_one_index_probe(filled: PostgresStore) -> None:
    found = scans(plan(filled, latest_of_types_query(1), {"t0": "pg_rare", "hb": "0", "blk": None}))
    [scan] = [s for s in found if s.get("Index Name") != "events_tx_id"]  # not the horizon probe
    assert scan["Index Name"] == "events_type_tx_id"
    assert scan["Actual Rows"] == 1
    assert scan.get("Rows Removed by Filter", 0) == 0


def test_a_rare_type_reader_moves_to_the_head_without_matching(filled: PostgresStore) -> None:
    rare = filled.read_page(0, types=["pg_rare"])
    assert len(rare.events) == 1
    assert rare.end == filled.latest_position()
    assert filled.read_page(rare.end, types=["pg_rare"]).events == []
