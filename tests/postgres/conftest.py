"""Fixtures for PostgreSQL-only tests: a fresh schema per test, an admin connection."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from esctl_lib.stores.postgres import PostgresStore
from tests.backends import POSTGRES_DSN, drop_schema, require_postgres


class PgSpec:
    """A fresh schema; ``open()`` gives another store on it (closed after the test)."""

    def __init__(self) -> None:
        self.url = POSTGRES_DSN
        self.schema = f"t_{uuid.uuid4().hex[:12]}"
        self.opened: list[PostgresStore] = []

    def open(self, **kwargs: Any) -> PostgresStore:
        store = PostgresStore(self.url, schema=self.schema, **kwargs)
        self.opened.append(store)
        return store


@pytest.fixture
def pg() -> Iterator[PgSpec]:
    """A set-up PostgreSQL schema, dropped afterwards."""
    require_postgres()
    spec = PgSpec()
    spec.open().setup()
    try:
        yield spec
    finally:
        for store in spec.opened:
            store.close()
        drop_schema(spec.schema)


@pytest.fixture
def admin() -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection for looking behind the store's back."""
    require_postgres()
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        yield conn
