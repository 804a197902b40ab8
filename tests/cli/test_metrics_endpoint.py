"""``esctl run --metrics-port``: the scraped figures are the store's, exactly, and
``/healthz`` answers as ``esctl status --check`` does (and stays unhealthy until fixed).

A real ``esctl run`` in its own process, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from esctl_lib import EventStore
from esctl_lib.testing import eventually
from tests.backends import POSTGRES_DSN, drop_schema
from tests.cli.conftest import AGGREGATE, OTHER, Backend, Cli, add, make_backend, write_config
from tests.cli.test_signals import Lines, _env

ITEMS, EXPLODER, CRASHER = "cli_items", "cli_exploder", "cli_crasher"
PROCESSORS = ("cliapp.processors:ItemList", "cliapp.processors:Exploder")
DEADLINE = 60.0
pytestmark = pytest.mark.slow  # real runners: 5-20 s each
SAMPLE = re.compile(r'^(\w+)(?:\{([^}]*)\})? (\S+)$')


class Endpoint:
    """A running ``esctl run --metrics-port 0`` and its port."""

    def __init__(self, proc: subprocess.Popen[str], lines: Lines, port: int) -> None:
        self.proc, self.lines, self.port = proc, lines, port

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return int(r.status), r.read().decode()
        except urllib.error.HTTPError as e:
            return int(e.code), e.read().decode()

    def metrics(self) -> dict[tuple[str, str], float]:
        """``(name, labels) -> value`` of every sample (labels as written)."""
        status, text = self.get("/metrics")
        assert status == 200
        out = {}
        for line in text.splitlines():
            match = SAMPLE.match(line)
            if match and not line.startswith("#"):
                out[(match[1], match[2] or "")] = float(match[3])
        return out

    def value(self, name: str, processor: str | None = None) -> float | None:
        labels = f'processor="{processor}"' if processor else ""
        return self.metrics().get((name, labels))


@contextmanager
def start(project: Path, env: dict[str, str], *extra: str) -> Iterator[Endpoint]:
    proc = subprocess.Popen([sys.executable, "-m", "esctl", "run", "--metrics-port", "0",
                             *extra], cwd=project, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        lines = Lines(proc.stderr)
        lines.wait_for("serving metrics on http://")
        port = int(re.findall(r"serving metrics on http://[^:]+:(\d+)/", "".join(lines.seen))[0])
        yield Endpoint(proc, lines, port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=DEADLINE) in (0, 1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def events(backend: Backend) -> list[int]:
    """Five items, the fourth poison for the Exploder."""
    store = backend.open()
    ids = [add(store, "ItemAdded", AGGREGATE if i % 2 else OTHER, name=f"item{i}",
               explode=(i == 3)).id for i in range(5)]
    return ids


@pytest.fixture
def endpoint(backend: Backend, project: Path, events: list[int]) -> Iterator[Endpoint]:
    write_config(project, processors=PROCESSORS,
                 extra="[processing]\nretry = \"constant\"\n")
    with start(project, _env(backend)) as running:
        yield running


def test_scraped_positions_lag_and_counts_are_the_stores(
        endpoint: Endpoint, backend: Backend, events: list[int]) -> None:
    store: EventStore = backend.open()
    head = store.latest_position()
    eventually(lambda: endpoint.value("esctl_processor_position", ITEMS) == head,
               timeout=DEADLINE, what="cli_items at the head")
    # the failure is counted first, then the events before the poison one commit
    eventually(lambda: endpoint.value("esctl_processor_failures_total", EXPLODER)
               and endpoint.value("esctl_processor_position", EXPLODER) == events[2],
               timeout=DEADLINE, what="cli_exploder failing just before the poison event")
    poison = events[3]
    metrics = endpoint.metrics()

    def sample(name: str, processor: str) -> float:
        return metrics[(name, f'processor="{processor}"')]

    assert metrics[("esctl_store_head_position", "")] == head
    assert metrics[("esctl_store_events", "")] == store.count() == 5
    assert sample("esctl_processor_position", ITEMS) == store.get_tracker(ITEMS) == head
    assert sample("esctl_processor_lag_events", ITEMS) == 0
    assert sample("esctl_processor_lag_seconds", ITEMS) == 0
    assert sample("esctl_processor_events_processed_total", ITEMS) == 5
    assert sample("esctl_processor_batch_duration_seconds_count", ITEMS) >= 1
    exploder = store.get_tracker(EXPLODER)
    assert sample("esctl_processor_position", EXPLODER) == exploder
    assert store.count(after=exploder) == 2  # the poison event and the one after it
    assert sample("esctl_processor_lag_events", EXPLODER) == 2
    assert sample("esctl_processor_lag_estimated", EXPLODER) == 0
    assert sample("esctl_processor_lag_seconds", EXPLODER) > 0
    assert sample("esctl_processor_events_processed_total", EXPLODER) == 3  # before poison
    assert exploder < poison
    states = {label: v for (name, label), v in metrics.items()
              if name == "esctl_processor_state" and f'processor="{EXPLODER}"' in label}
    assert sum(states.values()) == 1 and len(states) == 8  # one state of the eight is on
    # failing, or running again for a moment while it retries
    assert (states[f'processor="{EXPLODER}",state="failing"']
            or states[f'processor="{EXPLODER}",state="running"'])
    assert sample("esctl_processor_healthy", EXPLODER) == 0
    assert sample("esctl_processor_healthy", ITEMS) == 1
    assert sample("esctl_processor_parked_events", EXPLODER) == 0
    assert sample("esctl_processor_restarts_total", ITEMS) == 0
    names = {name for name, _ in metrics}
    dashboard = (Path(__file__).parents[2] / "examples/grafana/esctl-dashboard.json").read_text()
    used = set(re.findall(r"esctl_\w+", dashboard)) - {"esctl_processors"}
    assert used and used <= names, used - names  # the dashboard plots what is exported


def test_healthz_is_503_while_a_processor_fails_and_stays_so_until_it_is_fixed(
        endpoint: Endpoint, cli: Cli, events: list[int]) -> None:
    def failures() -> float:
        return endpoint.value("esctl_processor_failures_total", EXPLODER) or 0

    eventually(lambda: failures() >= 1, timeout=DEADLINE, what="a failure")
    # The child counts the failure before it records its state in the store, which is
    # what /healthz reads: wait for the state, then it must stay unhealthy.
    eventually(lambda: endpoint.get("/healthz")[0] == 503, timeout=DEADLINE,
               what="/healthz to answer 503 for the failing processor")
    status, body = endpoint.get("/healthz")
    assert status == 503
    assert body.startswith(f"{EXPLODER}: ") and "boom on item3" in body  # failing (or
    # running again for a moment: its error stays until it gets past the event)
    seen = failures()
    eventually(lambda: failures() > seen, timeout=DEADLINE, what="a retry failing again")
    assert endpoint.get("/healthz")[0] == 503  # retried and failed again: still unhealthy
    check = cli("status", "--check")
    assert check.exit_code == 1 and check.output.startswith(f"{EXPLODER}: ")
    assert "boom on item3" in check.output

    assert cli("skip", EXPLODER, str(events[3]), "--reason", "poison").exit_code == 0
    eventually(lambda: endpoint.get("/healthz")[0] == 200, timeout=DEADLINE,
               what="healthy once the poison event is skipped")
    status, body = endpoint.get("/healthz")
    assert body == "ok: 2 processor(s) healthy\n"
    assert endpoint.value("esctl_processor_parked_events", EXPLODER) == 1
    assert endpoint.value("esctl_processor_lag_events", EXPLODER) == 0


def test_healthz_applies_the_status_thresholds_from_its_query(
        endpoint: Endpoint, backend: Backend, events: list[int]) -> None:
    head = backend.open().latest_position()
    eventually(lambda: endpoint.value("esctl_processor_position", ITEMS) == head
               and endpoint.value("esctl_processor_position", EXPLODER) == events[2],
               timeout=DEADLINE, what="cli_items at the head, cli_exploder at the poison")
    status, body = endpoint.get("/healthz?max_lag=1")
    assert status == 503
    assert f"{EXPLODER}: lag 2 events exceeds 1" in body


def test_healthz_is_503_after_a_crash_until_the_processor_gets_past_it(
        backend: Backend, project: Path, cli: Cli) -> None:
    store = backend.open()
    add(store, "ItemAdded", AGGREGATE, name="fine")
    crash = add(store, "ItemAdded", OTHER, name="fatal", crash=True)
    write_config(project, processors=("cliapp.crashing:Crasher",))
    with start(project, _env(backend)) as endpoint:
        eventually(lambda: (endpoint.value("esctl_processor_restarts_total", CRASHER) or 0)
                   >= 2, timeout=DEADLINE, what="the runner restarting the crashed child twice")
        status, body = endpoint.get("/healthz")
        assert status == 503 and body.startswith(f"{CRASHER}: "), body
        assert "exited with signal" in body or "exited with code 9" in body
        # the crash took the whole batch down: nothing of it committed
        assert endpoint.value("esctl_processor_position", CRASHER) == store.get_tracker(
            CRASHER) == 0
        assert endpoint.value("esctl_processor_lag_events", CRASHER) == 2
        assert cli("skip", CRASHER, str(crash.id)).exit_code == 0
        eventually(lambda: endpoint.get("/healthz")[0] == 200, timeout=DEADLINE,
                   what="healthy once the crashing event is skipped")
        assert endpoint.value("esctl_processor_position", CRASHER) == store.get_tracker(
            CRASHER) == crash.id


@pytest.fixture
def pg_backend(tmp_path: Path) -> Iterator[Backend]:
    backend = make_backend("postgres", tmp_path)
    backend.open().setup()
    try:
        yield backend
    finally:
        for store in backend.opened:
            store.close()
        if backend.schema:
            drop_schema(backend.schema)


@pytest.mark.postgres
def test_no_password_reaches_any_metric_or_health_answer(
        project: Path, pg_backend: Backend) -> None:
    secret = "s3cret-metrics-pw"
    url = POSTGRES_DSN.replace("postgres@", f"postgres:{secret}@", 1)
    assert secret in url
    add(pg_backend.open(), "ItemAdded", AGGREGATE, name="boom", explode=True)
    write_config(project, processors=PROCESSORS)
    env = _env(pg_backend) | {"ESCTL_STORE__URL": url}
    with start(project, env) as endpoint:
        eventually(lambda: endpoint.value("esctl_processor_failures_total", EXPLODER),
                   timeout=DEADLINE, what="a failure")
        texts = [endpoint.get("/metrics")[1], endpoint.get("/healthz")[1],
                 endpoint.get("/healthz?max_lag=0")[1]]
        assert all(secret not in text for text in texts)
        assert "esctl_processor_position" in texts[0]
        assert f"{EXPLODER}: " in texts[1] and "boom" in texts[1]
