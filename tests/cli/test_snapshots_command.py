"""``esctl snapshots``: lists snapshots per aggregate type and drops them, on SQLite and
PostgreSQL, read back through the library."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from esctl_lib import EventStore, Snapshot
from tests.cli.conftest import Backend, Cli, one_error_line, write_config

TODO = "todo_app.aggregates:TodoList"
OTHER = "shop.orders:Order"


def keep(store: EventStore, kind: str, version: int, **state: object) -> str:
    agg = str(uuid.uuid4())
    store.save_snapshot(Snapshot(agg, kind, version, 1, {"n": version, **state}, 1_700_000_000.0))
    return agg


def test_snapshots_lists_each_type(cli: Cli, backend: Backend, project: Path) -> None:
    write_config(project)
    store = backend.open()
    assert cli("snapshots").output.strip() == "no snapshots"
    keep(store, TODO, 100)
    keep(store, TODO, 200, pad="x" * 300)
    keep(store, OTHER, 10)
    result = cli("snapshots")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "aggregate type" in lines[0] and "bytes" in lines[0]
    assert TODO in result.output and OTHER in result.output
    assert "2023-11-14T22:13:20+00:00" in result.output
    listed = json.loads(cli("snapshots", "--json").output)
    assert [(i["aggregate_type"], i["count"]) for i in listed] == [(OTHER, 1), (TODO, 2)]
    assert listed[1]["bytes"] > 300 and listed[1]["newest"] == 1_700_000_000.0


def test_drop_by_class_name_or_path(cli: Cli, backend: Backend, project: Path) -> None:
    write_config(project)
    store = backend.open()
    keep(store, TODO, 100)
    keep(store, TODO, 100)
    kept = keep(store, OTHER, 10)
    result = cli("snapshots", "--drop", "TodoList")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"dropped 2 snapshots of {TODO}"
    assert [i.aggregate_type for i in store.snapshots()] == [OTHER]
    result = cli("snapshots", "--drop", OTHER, "--json")
    assert json.loads(result.output) == {"dropped": {OTHER: 1}}
    assert store.snapshots() == [] and store.load_snapshot(kept, OTHER, 1) is None
    result = cli("snapshots", "--drop", "Nothing")
    assert (result.exit_code, result.output.strip()) == (0, "no snapshots of Nothing")


def test_a_store_not_set_up_is_one_line_and_exit_1(blank: Backend, project: Path) -> None:
    write_config(project)
    for args in (("snapshots",), ("snapshots", "--drop", "TodoList")):
        result = Cli(blank.env())(*args)
        assert result.exit_code == 1
        assert "esctl setup" in one_error_line(result)
