"""CLI test fixtures: a store on each real backend, a project folder, and a CLI runner.

The CLI opens stores by URL, so the memory backend (one store per object) does not apply:
these tests run on SQLite files and on the PostgreSQL server (a fresh schema per test).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from esctl.main import app
from esctl_lib import EventStore
from tests.backends import POSTGRES_DSN, StoreSpec, drop_schema, require_postgres

APP_PATH = Path(__file__).parent / "app"
if str(APP_PATH) not in sys.path:
    sys.path.insert(0, str(APP_PATH))
AGGREGATE = "5b6e0c2e-8a4f-4d3e-9b9e-3f1f2a6c7d10"
OTHER = "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"


class Backend(StoreSpec):
    """A store location (see StoreSpec) that the CLI can be pointed at."""

    def env(self) -> dict[str, str | None]:
        """The environment that points the CLI at this store."""
        return {"ESCTL_STORE__URL": self.url, "ESCTL_STORE__SCHEMA": self.schema}


def make_backend(name: str, tmp_path: Path) -> Backend:
    if name == "sqlite":
        return Backend(name, f"sqlite:///{tmp_path / 'events.db'}")
    require_postgres()
    return Backend(name, POSTGRES_DSN, schema=f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(autouse=True)
def no_esctl_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outer ESCTL_* variables must not leak into these tests."""
    for name in list(os.environ):
        if name.startswith("ESCTL_"):
            monkeypatch.delenv(name)


@pytest.fixture(params=["sqlite", "postgres"])
def blank(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A store location on each backend, not set up."""
    backend = make_backend(request.param, tmp_path)
    try:
        yield backend
    finally:
        for store in backend.opened:
            store.close()
        if backend.schema:
            drop_schema(backend.schema)


@pytest.fixture
def backend(blank: Backend) -> Backend:
    """A set-up store on each backend."""
    blank.open().setup()
    return blank


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder, the current directory for the test (no config in it)."""
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def write_config(folder: Path, *, store: bool = False, backend: Backend | None = None,
                 processors: tuple[str, ...] = (), extra: str = "") -> Path:
    """Write an eventsourcery.toml using the test app (and, optionally, the store)."""
    lines = []
    if store and backend is not None:
        lines += ["[store]", f'url = "{backend.url}"']
        if backend.schema:
            lines.append(f'schema = "{backend.schema}"')
    lines += [
        "[app]",
        f'paths = ["{APP_PATH}"]',
        'events = ["cliapp.events"]',
        "processors = [" + ", ".join(f'"{p}"' for p in processors) + "]",
    ]
    path = folder / "eventsourcery.toml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


ALL_PROCESSORS = ("cliapp.processors:ItemList", "cliapp.processors:Noticer")


class Cli:
    """Runs ``esctl`` in-process with Typer's runner; outer ESCTL_* variables are unset."""

    def __init__(self, env: dict[str, str | None]) -> None:
        self.env = {k: None for k in os.environ if k.startswith("ESCTL_")} | env

    def __call__(self, *args: str, input: str | None = None,
                 env: dict[str, str | None] | None = None) -> Result:
        result = CliRunner().invoke(app, list(args), input=input, env=self.env | (env or {}),
                                    catch_exceptions=False)
        return result


@pytest.fixture
def cli(backend: Backend, project: Path) -> Cli:
    """The CLI pointed (by environment) at the set-up store, run from the project folder."""
    return Cli(backend.env())


@pytest.fixture
def bare_cli(project: Path) -> Cli:
    """The CLI with no store in the environment, run from the project folder."""
    return Cli({})


def one_error_line(result: Result) -> str:
    """The single stderr line of a failed command (asserting there is exactly one)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert lines[0].startswith("esctl: error: ")
    return lines[0]


def add(store: EventStore, cls_name: str, aggregate: str, **body: Any) -> Any:
    """Append one test-app event (by type name) and return it as stored."""
    from cliapp import events

    cls: Callable[..., Any] = getattr(events, cls_name)
    stored = store.append([cls(aggregate_id=aggregate, body=body)])[0]
    readable(store, stored.id)
    return stored


def total(store: EventStore, event_type: str | None = None) -> int:
    """How many events are stored (of a type), committed ones included that readers of the
    stream may not see yet (so "nothing was written" checks cannot pass by accident)."""
    with store.transaction() as tx:
        if event_type is None:
            row = tx.fetchone("SELECT count(*) FROM events")
        else:
            row = tx.fetchone(f"SELECT count(*) FROM events WHERE type = {tx.placeholder}",
                              (event_type,))
    assert row is not None
    return int(row[0])


def readable(store: EventStore, position: int, timeout: float = 30.0) -> None:
    """Wait until ``position`` is readable by any process.

    On PostgreSQL an event becomes readable once no older writing transaction of the
    server is still open, and other test suites may hold one open for a moment.
    """
    from esctl_lib.processing.waiting import is_readable
    from esctl_lib.testing import eventually

    eventually(lambda: is_readable(store, position), timeout=timeout,
               what=f"event {position} to become readable")
