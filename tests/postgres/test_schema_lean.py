"""Schema 3 on PostgreSQL (``003_lean_events.sql``): json bodies, no (type, tx, id) index,
and the in-place upgrade of a store created at schema 2, with its data (issue 15).

The store contract runs on a store upgraded in place (``TestUpgradedPostgres``) and on one
still at schema 2 (``TestSchema2Postgres``: new code before ``esctl setup`` ran)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from esctl_lib import ConcurrencyError, DuplicateEventError, Event, EventStore
from esctl_lib.stores.postgres import PostgresStore
from esctl_lib.stores.schema_files import latest_version, schema_files
from esctl_lib.testing import EventStoreContract
from esctl_lib.testing.contract.ordering import append_out_of_order
from tests.backends import POSTGRES_DSN, drop_schema, require_postgres

LEAN = 3


class LeanPgAdded(Event, type_name="lean_pg_added"):
    pass


class LeanPgOther(Event, type_name="lean_pg_other"):
    pass


def create_below(schema: str, below: int = LEAN) -> None:
    """A store as ``esctl setup`` of a version that knew only the schema files below
    ``below`` created it."""
    files = [f for f in schema_files("postgresql") if f.version < below]
    assert [f.version for f in files] == list(range(1, below))
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(psycopg.sql.Identifier(schema)))
        conn.execute(psycopg.sql.SQL("SET search_path TO {}").format(
            psycopg.sql.Identifier(schema)))
        conn.execute("CREATE TABLE schema_version (version integer PRIMARY KEY, "
                     "name text NOT NULL, applied_at double precision NOT NULL)")
        for f in files:
            conn.execute(f.sql.encode())
            conn.execute("INSERT INTO schema_version VALUES (%s, %s, 0)", (f.version, f.name))


def catalog(schema: str) -> tuple[dict[str, str], set[str]]:
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        types = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'events'", (schema,)).fetchall())
        indexes = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'events'",
            (schema,)).fetchall()}
    return types, indexes


@pytest.fixture
def schema() -> Iterator[str]:
    require_postgres()
    name = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        drop_schema(name)


def test_a_fresh_store_has_json_bodies_and_no_type_index(schema: str) -> None:
    store = PostgresStore(POSTGRES_DSN, schema=schema)
    try:
        store.setup()
        assert store.schema_version() == latest_version("postgresql") >= LEAN
        types, indexes = catalog(schema)
        assert types["body"] == "json" and types["metadata"] == "json"
        assert "events_type_tx_id" not in indexes
        assert {"events_pkey", "events_tx_id", "events_uuid_key",
                "events_aggregate_version_key"} <= indexes
        agg = str(uuid.uuid4())
        store.append([LeanPgAdded(aggregate_id=agg, body={"a": 1, "b": [1, 2]},
                                  metadata={"tenant": "t"})])
        with store.connection() as conn:  # the text as written: compact, keys in order
            assert conn.execute("SELECT body::text, metadata::text FROM events").fetchone() \
                == ('{"a":1,"b":[1,2]}', '{"tenant":"t"}')
    finally:
        store.close()


def test_setup_upgrades_a_schema_2_store_in_place_keeping_every_event(schema: str) -> None:
    create_below(schema)
    old = PostgresStore(POSTGRES_DSN, schema=schema)
    try:
        assert old.schema_version() == LEAN - 1
        aggs = [str(uuid.uuid4()) for _ in range(3)]
        corr, cause = str(uuid.uuid4()), str(uuid.uuid4())
        written: list[Event] = []
        for i in range(30):  # written by this code at schema 2: jsonb bodies
            cls = LeanPgOther if i % 10 == 4 else LeanPgAdded
            written += old.append([cls(
                aggregate_id=aggs[i % 3], body={"i": i, "tags": ["a", "b"], "x": 1.5},
                correlation_id=corr if i % 2 else None,
                causation_id=cause if i % 5 == 0 else None,
                metadata={"tenant": "t"} if i == 7 else None,
                created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC) if i == 3 else None)])
        written += old.append([LeanPgAdded(aggregate_id=aggs[0], body={"n": n})
                               for n in range(5)])  # a batch
        assert catalog(schema)[0]["body"] == "jsonb"
        before = [(e.id, e.uuid, e.version, e.body, e.metadata) for e in
                  old.read_page(0, limit=100).events]
        typed_before = [e.id for e in old.read_page(0, types=["lean_pg_other"]).events]
    finally:
        old.close()

    store = PostgresStore(POSTGRES_DSN, schema=schema)
    try:
        assert store.setup() == ["applied schema 003_lean_events"]
        assert store.schema_version() == LEAN
        types, indexes = catalog(schema)
        assert types["body"] == "json" and "events_type_tx_id" not in indexes
        page = store.read_page(0, limit=100)
        assert [(e.id, e.uuid, e.version, e.body, e.metadata) for e in page.events] == before
        assert [(e.id, e.uuid, e.aggregate_id, e.version, e.correlation_id, e.causation_id,
                 e.created_at, e.body, e.metadata) for e in page.events] == [
            (e.id, e.uuid, e.aggregate_id, e.version, e.correlation_id, e.causation_id,
             e.created_at, e.body, e.metadata) for e in written]
        assert [e.id for e in store.read_page(0, types=["lean_pg_other"]).events] \
            == typed_before == [written[i].id for i in (4, 14, 24)]
        assert store.latest_position(types=["lean_pg_other"]) == written[24].id
        assert {e.id for e in store.read_by_correlation(corr)} == {
            e.id for i, e in enumerate(written[:30]) if i % 2}
        assert [e.version for e in store.read_aggregate(aggs[0])] == list(range(1, 16))
        # the guarantees hold across the upgrade: versions, unique uuids
        with pytest.raises(ConcurrencyError):
            store.append([LeanPgAdded(aggregate_id=aggs[1])], expected_version=9)
        with pytest.raises(DuplicateEventError) as info:
            store.append([LeanPgAdded(aggregate_id=aggs[1], uuid=written[0].uuid)])
        assert info.value.uuid == written[0].uuid
        new = store.append([LeanPgAdded(aggregate_id=aggs[1])], expected_version=10)
        assert new[0].id > written[-1].id and new[0].version == 11
        assert store.setup() == [f"schema is up to date (version {LEAN})"]
    finally:
        store.close()


def test_a_running_store_keeps_writing_across_the_upgrade(schema: str) -> None:
    """A process that opened the store at schema 2 goes on appending (single events and
    batches) after another one (``esctl setup``) upgraded the table under it."""
    create_below(schema)
    running = PostgresStore(POSTGRES_DSN, schema=schema)
    agg = str(uuid.uuid4())
    try:
        running.append([LeanPgAdded(aggregate_id=agg, body={"k": 1})], expected_version=0)
        upgrader = PostgresStore(POSTGRES_DSN, schema=schema)
        upgrader.setup()
        upgrader.close()
        running.append([LeanPgAdded(aggregate_id=agg, body={"k": 2})], expected_version=1)
        running.append([LeanPgAdded(aggregate_id=agg, body={"k": k}) for k in (3, 4)],
                       expected_version=2)
        assert [e.body["k"] for e in running.read_aggregate(agg)] == [1, 2, 3, 4]
    finally:
        running.close()


class _OnSchema(EventStoreContract):
    """A fresh schema per test, dropped by ``drop_store`` after the stores are closed."""

    schema_name = ""

    def _open(self) -> PostgresStore:
        if not self.schema_name:
            require_postgres()
            self.schema_name = f"t_{uuid.uuid4().hex[:12]}"
            self.create()
        return PostgresStore(POSTGRES_DSN, schema=self.schema_name)

    def create(self) -> None:
        create_below(self.schema_name)

    def open_again(self) -> EventStore:
        return self._open()

    def drop_store(self) -> None:
        if self.schema_name:
            drop_schema(self.schema_name)

    def commit_out_of_order(
        self, store: EventStore, first: Event, second: Event
    ) -> list[Event] | None:
        return append_out_of_order(store, first, second)


class TestUpgradedPostgres(_OnSchema):
    """The contract on a store created at schema 2 with data, upgraded by ``setup()``,
    then emptied (the contract wants an empty store, ids from 1)."""

    def create(self) -> None:
        create_below(self.schema_name)
        seed = PostgresStore(POSTGRES_DSN, schema=self.schema_name)
        try:
            agg = str(uuid.uuid4())
            seed.append([LeanPgAdded(aggregate_id=agg, body={"n": n}) for n in range(3)])
            assert seed.setup() == ["applied schema 003_lean_events"]
            with seed.connection() as conn:
                conn.execute("TRUNCATE events RESTART IDENTITY")
        finally:
            seed.close()

    def make_store(self) -> EventStore:
        return self._open()


class TestSchema2Postgres(_OnSchema):
    """The contract on a store still at schema 2 (jsonb bodies, the type index), opened
    by this code: the contract's own ``setup()`` would upgrade it, so it is skipped."""

    def make_store(self) -> EventStore:
        store = self._open()
        store.setup = lambda: []  # type: ignore[method-assign]  # stay at schema 2
        return store


