"""Versioned schema files, the ``schema`` option, and clear errors when the schema is wrong."""

from __future__ import annotations

import re
import threading
import uuid
from importlib import resources
from typing import Any

import psycopg
import pytest

from esctl_lib import ConfigError, Event, SchemaError, open_store, open_tables
from esctl_lib.stores.postgres import PostgresStore
from esctl_lib.stores.schema_files import latest_version
from tests.backends import POSTGRES_DSN, drop_schema, require_postgres
from tests.postgres.conftest import PgSpec

TABLES = {"events", "trackers", "processor_state", "parked_events", "schema_version",
          "snapshots"}


def columns(admin: psycopg.Connection[Any], schema: str, table: str) -> list[str]:
    rows = admin.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    ).fetchall()
    return [r[0] for r in rows]


def sqlite_columns(table: str) -> list[str]:
    text = resources.files("esctl_lib.stores").joinpath("schema/sqlite/001_init.sql").read_text()
    body = text.split(f"CREATE TABLE IF NOT EXISTS {table} (", 1)[1].split(");", 1)[0]
    names = [line.split()[0] for line in body.strip().splitlines()]
    return [n for n in names if re.match(r"^[a-z_]+$", n) and n not in ("unique", "primary")]


def test_setup_puts_every_table_in_the_named_schema(
    pg: PgSpec, admin: psycopg.Connection[Any]
) -> None:
    rows = admin.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (pg.schema,)
    ).fetchall()
    assert {r[0] for r in rows} == TABLES


def test_tables_have_the_sqlite_columns_plus_the_writing_transaction(
    pg: PgSpec, admin: psycopg.Connection[Any]
) -> None:
    for table in ("events", "trackers", "processor_state", "parked_events"):
        expected = sqlite_columns(table)
        got = [c for c in columns(admin, pg.schema, table) if c != "tx"]
        assert got == expected, table


def test_two_schemas_in_one_database_keep_their_events_apart(pg: PgSpec) -> None:
    other = PgSpec()
    try:
        other_store = other.open()
        other_store.setup()
        other_store.append([Event(aggregate_id=str(uuid.uuid4()), type="pg_other")])
        assert pg.open().latest_position() == 0
        assert other_store.latest_position() == 1
    finally:
        for store in other.opened:
            store.close()
        drop_schema(other.schema)


def test_unqualified_projection_tables_land_in_the_store_schema(
    pg: PgSpec, admin: psycopg.Connection[Any]
) -> None:
    store = pg.open()
    with open_tables(store) as tx:
        tx.execute("CREATE TABLE IF NOT EXISTS pg_projection (id integer PRIMARY KEY, n text)")
        tx.insert("pg_projection", {"id": 1, "n": "one"})
    assert columns(admin, pg.schema, "pg_projection") == ["id", "n"]
    with open_tables(store) as tx:
        assert tx.select("pg_projection") == [{"id": 1, "n": "one"}]


def test_setup_again_reports_the_schema_up_to_date(pg: PgSpec) -> None:
    assert pg.open().setup() == [f"schema is up to date (version {latest_version('postgresql')})"]


def test_concurrent_setups_of_a_new_schema_both_succeed() -> None:
    require_postgres()
    spec = PgSpec()
    stores = [spec.open() for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def run(store: PostgresStore) -> None:
        barrier.wait()
        try:
            store.setup()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert stores[0].schema_version() == latest_version("postgresql")
    finally:
        for store in stores:
            store.close()
        drop_schema(spec.schema)


def test_a_schema_newer_than_this_code_is_a_clear_error(pg: PgSpec) -> None:
    store = pg.open()
    with open_tables(store) as tx:
        tx.insert("schema_version", {"version": 999, "name": "future", "applied_at": 0.0})
    with pytest.raises(SchemaError, match="newer than this esctl knows"):
        store.setup()


def test_a_store_never_set_up_says_to_run_esctl_setup() -> None:
    require_postgres()
    store = open_store(POSTGRES_DSN, schema=f"t_{uuid.uuid4().hex[:12]}")
    try:
        assert store.schema_version() == 0
        with pytest.raises(SchemaError, match="run `esctl setup`"):
            store.read_after(0)
    finally:
        store.close()


def test_an_invalid_schema_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="schema"):
        open_store(POSTGRES_DSN, schema="bad-name; DROP TABLE x")
