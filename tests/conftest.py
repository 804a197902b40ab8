"""Fixtures every test may use, and the test lanes.

Lanes (markers, listed in pyproject.toml):

- ``postgres``: needs the PostgreSQL server. Given here to every test under
  ``tests/postgres/``, every test using a PostgreSQL-only fixture, and every case
  parametrized on the ``"postgres"`` backend (``tests/backends.py`` marks its own
  params too). Under CI=true these run, never skip.
- ``slow``: stress and multi-process tests of several seconds; set per file with
  ``pytestmark``. The everyday lane is ``pytest -m "not slow"``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backends import shared_store_spec, store, store_spec  # noqa: F401  (fixtures)

TESTS = Path(__file__).resolve().parent
#: Fixtures that only exist on PostgreSQL.
POSTGRES_FIXTURES = frozenset({"pg", "admin", "pg_spec", "pg_store", "postgres", "sqlite_and_postgres"})


def needs_postgres(item: pytest.Item) -> bool:
    """True when ``item`` talks to the PostgreSQL server."""
    if TESTS / "postgres" in item.path.parents:
        return True
    if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "postgres" in callspec.params.values()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if needs_postgres(item) and item.get_closest_marker("postgres") is None:
            item.add_marker(pytest.mark.postgres)
