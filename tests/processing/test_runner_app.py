"""`esctl run`'s children build the same application as the parent (issue 10, item 3).

Both tests start the real CLI (``python -m esctl run``) in a subprocess, as a user would.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from esctl_lib import Event, EventRegistry, EventStore, open_store
from esctl_lib.testing import eventually

UPCAST_APP = Path(__file__).parent / "runner_apps" / "upcast_app"


def esctl_run(project: Path, log: Path) -> subprocess.Popen[str]:
    """``esctl run`` in ``project`` (its eventsourcery.toml), output appended to ``log``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    with log.open("a") as out:
        return subprocess.Popen([sys.executable, "-m", "esctl", "run"], cwd=project, env=env,
                                stdout=out, stderr=out, text=True)


def until(check: Callable[[], object], *, within: float, proc: subprocess.Popen[str],
          log: Path) -> None:
    """Wait (``esctl_lib.testing.eventually``) until ``check`` is truthy; fail after ``within``
    seconds, or at once if ``proc`` ends first, showing the log."""

    def checked() -> object:
        result = check()
        assert result or proc.poll() is None, (
            f"esctl run exited ({proc.returncode}):\n{log.read_text()}")
        return result

    eventually(checked, timeout=within, what=f"the run to get there; the log so far in {log}")


def stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def test_an_upcaster_only_an_events_module_registers_is_applied_under_esctl_run(
    project: Path,
) -> None:
    db = project / "events.db"
    (project / "eventsourcery.toml").write_text(
        f'[store]\nurl = "sqlite:///{db}"\n'
        f'[app]\npaths = ["{UPCAST_APP}"]\nevents = ["upapp.events", "upapp.legacy"]\n'
        'processors = ["upapp.projections:ItemNames"]\n'
    )
    store: EventStore = open_store(f"sqlite:///{db}", registry=EventRegistry())
    try:
        store.setup()
        store.append([Event(aggregate_id=str(uuid.uuid4()), type="up_item_added_v0",
                            body={"title": "old pen"})])
        store.append([Event(aggregate_id=str(uuid.uuid4()), type="up_item_added",
                            body={"name": "new ink"})])
        log = project / "run.log"
        proc = esctl_run(project, log)
        try:
            until(lambda: store.get_tracker("up_item_names") >= 2, within=60, proc=proc,
                       log=log)
        finally:
            assert stop(proc) == 0, log.read_text()
        with store.transaction() as tx:
            rows = tx.fetchall("SELECT name FROM up_item_names ORDER BY name")
    finally:
        store.close()
    assert [row[0] for row in rows] == ["new ink", "old pen"]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def stamp(line: str) -> dt.datetime:
    found = _STAMP.match(line)
    assert found, line
    return dt.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f")


def test_runner_children_honour_the_store_connect_timeout(project: Path, closed_port: int) -> None:
    pytest.importorskip("psycopg")
    (project / "eventsourcery.toml").write_text(
        f'[store]\nurl = "postgresql://postgres@127.0.0.1:{closed_port}/test"\n'
        "connect_timeout = 1\n"
        f'[app]\npaths = ["{UPCAST_APP}"]\nevents = ["upapp.events"]\n'
        'processors = ["upapp.projections:ItemNames"]\n'
    )
    log = project / "run.log"
    proc = esctl_run(project, log)
    try:
        until(lambda: "up_item_names exited with" in log.read_text(), within=60,
                   proc=proc, log=log)
    finally:
        stop(proc)
    lines = log.read_text().splitlines()
    started = next(line for line in lines if "started up_item_names (pid" in line)
    failed = next(line for line in lines if "up_item_names exited with" in line)
    # The pool's default is 10 s; with connect_timeout = 1 the child gives up well before.
    assert (stamp(failed) - stamp(started)).total_seconds() < 6, "\n".join(lines)


def test_run_once_replay_and_status_see_the_same_application(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.cli.conftest import Cli

    db = project / "events.db"
    (project / "eventsourcery.toml").write_text(
        f'[store]\nurl = "sqlite:///{db}"\n'
        f'[app]\npaths = ["{UPCAST_APP}"]\nevents = ["upapp.events", "upapp.legacy"]\n'
        'processors = ["upapp.projections:ItemNames"]\n'
    )
    monkeypatch.chdir(project)
    cli = Cli({})
    assert cli("setup").exit_code == 0
    store: EventStore = open_store(f"sqlite:///{db}", registry=EventRegistry())
    try:
        store.append([Event(aggregate_id=str(uuid.uuid4()), type="up_item_added_v0",
                            body={"title": "old pen"})])
        store.append([Event(aggregate_id=str(uuid.uuid4()), type="up_item_added",
                            body={"name": "new ink"})])

        def names() -> list[str]:
            with store.transaction() as tx:
                return [r[0] for r in tx.fetchall("SELECT name FROM up_item_names ORDER BY 1")]

        def status() -> tuple[int, int]:
            result = cli("status", "--json")
            (row,) = json.loads(result.stdout)["processors"]
            return row["head"], row["lag_events"]

        assert status() == (2, 2)  # the legacy event counts: it is upcast to a handled type
        assert cli("run", "--once").exit_code == 0
        assert (names(), status()) == (["new ink", "old pen"], (2, 0))
        assert cli("replay", "up_item_names", "--yes").exit_code == 0
        assert (names(), status()) == (["new ink", "old pen"], (2, 0))
    finally:
        store.close()


def test_an_explicit_batch_size_applies_to_processors_that_set_none_in_every_command(
    tmp_path: Path,
) -> None:
    from esctl_lib import Processor, load_app, load_settings

    (tmp_path / "eventsourcery.toml").write_text(
        '[app]\nprocessors = ["tests.processing.runner_apps.apps:TickCounter", '
        '"tests.processing.runner_apps.apps:Crasher"]\n[processing]\nbatch_size = 7\n')
    app = load_app(load_settings(cwd=tmp_path))
    assert (app.processor("tick_counter").batch_size, app.processor("crasher").batch_size) == (
        500, 7)
    (tmp_path / "eventsourcery.toml").write_text(
        '[app]\nprocessors = ["tests.processing.runner_apps.apps:Crasher"]\n')
    crasher = load_app(load_settings(cwd=tmp_path)).processor("crasher")
    assert crasher.batch_size == Processor.batch_size  # the default is not an explicit one
