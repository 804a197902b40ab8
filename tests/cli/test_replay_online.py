"""``esctl replay`` rebuilds online: beside a live projection that keeps serving, with
``esctl run`` up, and without touching the live projection when it fails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from esctl_lib import EventStore, open_tables, rebuild_state
from esctl_lib.processing.state import read_state
from esctl_lib.testing import eventually
from tests.cli.conftest import AGGREGATE, OTHER, Backend, Cli, add, one_error_line, write_config

ITEMS = ("cliapp.processors:ItemList",)


def items(store: EventStore) -> list[dict[str, Any]]:
    with open_tables(store) as tx:
        return tx.select("cli_items", order_by=("item_id",))


@pytest.fixture
def items_cli(cli: Cli, project: Path) -> Cli:
    write_config(project, processors=ITEMS)
    return cli


@pytest.fixture
def runner(backend: Backend, project: Path, items_cli: Cli) -> Iterator[subprocess.Popen[str]]:
    """``esctl run`` in a subprocess, running cli_items."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    env.update({k: v for k, v in backend.env().items() if v is not None})
    proc = subprocess.Popen([sys.executable, "-m", "esctl", "run"], cwd=project, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_replay_with_the_runner_up_swaps_in_and_the_runner_carries_on(
    backend: Backend, items_cli: Cli, runner: subprocess.Popen[str]
) -> None:
    store = backend.open()
    for i in range(20):
        add(store, "ItemAdded", AGGREGATE if i % 2 else OTHER, name=f"item {i}")
    eventually(lambda: store.get_tracker("cli_items") == store.latest_position(), timeout=60,
               what="the runner to catch up")
    before = items(store)
    result = items_cli("replay", "cli_items", "--yes", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["processor"] == "cli_items"
    assert (summary["events"], summary["handled"]) == (20, 20)
    assert summary["position"] >= 20 and summary["seconds"] >= 0
    assert items(store) == before
    add(store, "ItemRemoved", OTHER)
    eventually(lambda: [r["item_id"] for r in items(store)] == [AGGREGATE], timeout=60,
               what="the runner to process an event after the swap")
    assert runner.poll() is None
    state = read_state(store, "cli_items")
    assert state is not None and state.state != "failing"


def test_a_failed_replay_exits_1_and_leaves_the_live_projection(
    backend: Backend, items_cli: Cli
) -> None:
    store = backend.open()
    add(store, "ItemAdded", AGGREGATE, name="kept")
    assert items_cli("run", "--once").exit_code == 0
    before, tracker = items(store), store.get_tracker("cli_items")
    add(store, "ItemAdded", OTHER)  # no name: the projector's handler fails on it
    result = items_cli("replay", "cli_items", "--yes")
    assert result.exit_code == 1
    assert "KeyError" in one_error_line(result)
    assert items(store) == before
    assert store.get_tracker("cli_items") == tracker
    state = rebuild_state(store, "cli_items")
    assert state is not None and state.state == "failed"
    assert state.error is not None and "KeyError" in state.error


def test_status_names_a_failed_rebuild_and_stays_unhealthy(
    backend: Backend, items_cli: Cli
) -> None:
    store = backend.open()
    add(store, "ItemAdded", AGGREGATE, name="kept")
    assert items_cli("run", "--once").exit_code == 0
    assert items_cli("status", "--check").exit_code == 0
    add(store, "ItemAdded", OTHER)  # no name: the projector's handler fails on it
    assert items_cli("replay", "cli_items", "--yes").exit_code == 1
    check = items_cli("status", "--check")
    assert check.exit_code == 1
    assert "rebuild failed" in check.output and "KeyError" in check.output
    detail = json.loads(items_cli("status", "--json").stdout)
    [row] = [p for p in detail["processors"] if p["name"] == "cli_items"]
    assert row["rebuild"]["state"] == "failed"
