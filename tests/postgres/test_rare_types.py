"""A reader filtered on a rare type reads the stream's (tx, id) index over its range, the
type a filter (schema 3 has no (type, tx, id) index): never a sequential scan of the table
nor a sort, and never more than the range from the reader's position to the head."""

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


def node_types(node: dict[str, Any]) -> list[str]:
    found = [str(node["Node Type"])]
    for child in node.get("Plans", []):
        found.extend(node_types(child))
    return found


def test_reading_a_rare_type_scans_the_stream_index_over_the_range_only(
    filled: PostgresStore,
) -> None:
    middle = filled.stream_key(COMMON // 2 - 10)  # the rare event lies just after it
    head = filled.stream_key(filled.latest_position())
    params = {"t0": "pg_rare", "ptx": str(middle.tx), "pid": middle.id,
              "btx": str(head.tx), "bid": head.id, "n": 1000}
    tree = plan(filled, read_types_query(1), params)
    [scan] = scans(tree)
    assert scan["Index Name"] == "events_tx_id"
    assert "Sort" not in node_types(tree) and "Seq Scan" not in node_types(tree)
    assert tree["Actual Rows"] == 1
    # the range after the position, not the table: ~10,000 events, not 20,001
    assert scan["Actual Rows"] < COMMON // 2 + 100


def test_several_types_are_one_scan(filled: PostgresStore) -> None:
    head = filled.stream_key(filled.latest_position())
    params = {"t0": "pg_rare", "t1": "pg_common", "ptx": "0", "pid": 0,
              "btx": str(head.tx), "bid": head.id, "n": 1000}
    tree = plan(filled, read_types_query(2), params)
    [scan] = scans(tree)
    assert scan["Index Name"] == "events_tx_id" and tree["Actual Rows"] == 1000
    assert scan["Actual Rows"] <= 1001  # stopped at the page's end
    assert "Sort" not in node_types(tree)


def test_the_newest_rare_event_is_found_scanning_back_from_the_head(
    filled: PostgresStore,
) -> None:
    tree = plan(filled, latest_of_types_query(1), {"t0": "pg_rare", "hb": "0", "blk": None})
    found = [s for s in scans(tree) if s["Relation Name"] == "events"]
    assert "Seq Scan" not in node_types(tree) and "Sort" not in node_types(tree)
    assert {s.get("Index Name") for s in found} == {"events_tx_id"}
    # stopped at the rare event: about half the table scanned back from the head
    assert max(s["Actual Rows"] for s in found) < COMMON // 2 + 100
    assert filled.latest_position(types=["pg_rare"]) == COMMON // 2 + 1001


def test_a_rare_type_reader_moves_to_the_head_without_matching(filled: PostgresStore) -> None:
    rare = filled.read_page(0, types=["pg_rare"])
    assert len(rare.events) == 1
    assert rare.end == filled.latest_position()
    assert filled.read_page(rare.end, types=["pg_rare"]).events == []
