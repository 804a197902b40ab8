"""The backends every store test runs on, written once; a fresh store location per test.

``BACKENDS`` is the one list: the ``store`` / ``store_spec`` fixtures, the
``shared_store_spec`` fixture (backends several processes can open) and the store
contract in ``tests/conformance/`` are all parametrized from it. A PostgreSQL case
carries the ``postgres`` marker; it uses ``ESCTL_TEST_POSTGRES_DSN`` (default the local
server), each test in a fresh schema dropped afterwards. With no server it skips
locally and fails under CI=true.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from esctl_lib import EventStore, open_store

POSTGRES_DSN = os.environ.get(
    "ESCTL_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BACKENDS = ["memory", "sqlite", "postgres"]
#: The backends whose data several processes can open at once (a file, a server).
SHARED_BACKENDS = [b for b in BACKENDS if b != "memory"]


def backend_params(names: Sequence[str] = BACKENDS) -> list[Any]:
    """``names`` as pytest params, the PostgreSQL one marked ``postgres``."""
    return [pytest.param(name, id=name, marks=[pytest.mark.postgres] if name == "postgres" else [])
            for name in names]


@dataclass(frozen=True)
class Location:
    """Where one test's store lives: a URL and, on PostgreSQL, a schema."""

    backend: str
    url: str
    schema: str | None = None

    def open(self, **kwargs: Any) -> EventStore:
        return open_store(self.url, schema=self.schema, **kwargs)


@contextmanager
def fresh_location(backend: str, tmp_path: Path) -> Iterator[Location]:
    """A new, empty place for a store on ``backend``; a PostgreSQL schema is dropped after."""
    if backend == "memory":
        yield Location(backend, "memory://")
    elif backend == "sqlite":
        yield Location(backend, f"sqlite:///{tmp_path / 'events.db'}")
    else:
        require_postgres()
        location = Location(backend, POSTGRES_DSN, schema=f"t_{uuid.uuid4().hex[:12]}")
        try:
            yield location
        finally:
            drop_schema(location.schema or "")


@dataclass
class StoreSpec:
    """Where a test's store lives; ``open()`` gives another handle on the same data."""

    backend: str
    url: str
    schema: str | None = None
    opened: list[EventStore] = field(default_factory=list)

    def open(self, **kwargs: Any) -> EventStore:
        store = open_store(self.url, schema=self.schema, **kwargs)
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


def postgres_available() -> str | None:
    """None when the test server answers, else the reason it does not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(POSTGRES_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as e:  # any failure to connect means "no server"
        return f"no PostgreSQL at {POSTGRES_DSN}: {e}".splitlines()[0]
    return None


_pg_reason: list[str | None] = []


def require_postgres() -> None:
    """Skip (locally) or fail (under CI) when PostgreSQL cannot be reached."""
    if not _pg_reason:
        _pg_reason.append(postgres_available())
    reason = _pg_reason[0]
    if reason is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI: {reason}")
        pytest.skip(reason)


def drop_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@contextmanager
def open_spec(backend: str, tmp_path: Path) -> Iterator[StoreSpec]:
    """A fresh, set-up store location on ``backend``; dropped or closed afterwards."""
    with fresh_location(backend, tmp_path) as location:
        spec = StoreSpec(backend, location.url, schema=location.schema)
        if backend == "memory":
            # memory stores are per instance: open() must return the same one
            only = open_store("memory://")
            spec.open = lambda **kw: only  # type: ignore[method-assign]
            spec.opened.append(only)
        spec.open().setup()
        try:
            yield spec
        finally:
            spec.close_all()


@pytest.fixture(params=backend_params())
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreSpec]:
    """A fresh, set-up store location on each backend."""
    with open_spec(request.param, tmp_path) as spec:
        yield spec


@pytest.fixture(params=backend_params(SHARED_BACKENDS))
def shared_store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreSpec]:
    """A store location several processes can open at once (SQLite file, PostgreSQL schema)."""
    with open_spec(request.param, tmp_path) as spec:
        yield spec


@pytest.fixture
def store(store_spec: StoreSpec) -> EventStore:
    """A fresh, set-up store on each backend."""
    return store_spec.opened[0]
