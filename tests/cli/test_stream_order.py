"""``tail --aggregate`` and ``reset --to`` on PostgreSQL, where ids commit out of order.

A transaction that wrote first comes first in the stream, even when an event with a
smaller id committed before it: the stream below reads 2, then 1, and the head is 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cliapp.events import ItemAdded

from esctl_lib import Event, EventStore, open_tables
from esctl_lib.testing.contract.ordering import append_out_of_order
from tests.backends import drop_schema
from tests.cli.conftest import AGGREGATE, OTHER, Backend, Cli, make_backend, write_config

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Backend]:
    backend = make_backend("postgres", tmp_path)
    try:
        backend.open().setup()
        yield backend
    finally:
        for store in backend.opened:
            store.close()
        if backend.schema:
            drop_schema(backend.schema)


@pytest.fixture
def pg_cli(pg: Backend, project: Path) -> Cli:
    write_config(project, processors=("cliapp.processors:ItemList",))
    return Cli(pg.env())


def out_of_order(store: EventStore, first: Event, second: Event) -> tuple[int, int]:
    """Commit ``first`` with the smaller id after ``second``; their ids in stream order."""
    late, early = append_out_of_order(store, first, second)
    assert late.id is not None and early.id is not None
    assert late.id > early.id
    assert store.latest_position() == early.id
    return late.id, early.id


def ids(stdout: str) -> list[int]:
    return [json.loads(line)["id"] for line in stdout.splitlines()]


def items(store: EventStore) -> dict[str, int]:
    with open_tables(store) as tx:
        rows: list[dict[str, Any]] = tx.select("cli_items")
    return {row["name"]: row["added"] for row in rows}


def test_tail_of_an_aggregate_shows_an_event_with_an_id_above_the_head(
    pg_cli: Cli, pg: Backend
) -> None:
    store = pg.open()
    x, y = out_of_order(store, ItemAdded(aggregate_id=AGGREGATE, body={"name": "pen"}),
                        ItemAdded(aggregate_id=AGGREGATE, body={"name": "ink"}))
    result = pg_cli("tail", "--json", "--aggregate", AGGREGATE)
    assert result.exit_code == 0, result.output
    assert ids(result.stdout) == [x, y] == [2, 1]
    assert ids(pg_cli("tail", "--json").stdout) == [2, 1]


def test_tail_of_an_aggregate_from_a_position_shows_what_follows_it_in_the_stream(
    pg_cli: Cli, pg: Backend
) -> None:
    store = pg.open()
    x, y = out_of_order(store, ItemAdded(aggregate_id=AGGREGATE, body={"name": "pen"}),
                        ItemAdded(aggregate_id=AGGREGATE, body={"name": "ink"}))
    assert ids(pg_cli("tail", "--json", "--aggregate", AGGREGATE, "--from", str(x)).stdout) == [y]
    assert ids(pg_cli("tail", "--json", "--aggregate", AGGREGATE, "--from", str(y)).stdout) == []


def test_reset_to_an_event_above_the_head_id_is_accepted_and_processes_what_follows(
    pg_cli: Cli, pg: Backend
) -> None:
    store = pg.open()
    x, y = out_of_order(store, ItemAdded(aggregate_id=AGGREGATE, body={"name": "pen"}),
                        ItemAdded(aggregate_id=OTHER, body={"name": "ink"}))
    assert pg_cli("run", "--once").exit_code == 0
    assert items(store) == {"pen": 1, "ink": 1}
    assert store.get_tracker("cli_items") == y
    result = pg_cli("reset", "cli_items", "--to", str(x), "--yes")
    assert result.exit_code == 0, result.output
    assert store.get_tracker("cli_items") == x == 2
    assert pg_cli("run", "--once").exit_code == 0
    assert items(store) == {"pen": 2, "ink": 1}  # only the event after 2 in the stream: 1
    assert store.get_tracker("cli_items") == y

