"""``Transaction.executemany`` on PostgreSQL: pipelined, yet exactly what psycopg would do.

Every case compares with, or falls back to, ``psycopg``'s own ``executemany`` on the same
server: the values stored, the errors raised, and the connection left usable. Cases that
used to hang run in a child process with a deadline, so a hang fails instead of blocking.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from esctl_lib.errors import StoreError
from esctl_lib.stores.postgres.pipeline import SYNC_EVERY, convert
from tests.postgres.conftest import PgSpec

COLUMNS = "n, i, num, s, b, f, ok, t, j, u"
TABLE = ("CREATE TABLE {} (n int PRIMARY KEY, i bigint, num numeric, s text, b bytea, "
         "f double precision, ok boolean, t timestamptz, j jsonb, u uuid)")
INSERT = "INSERT INTO {} (" + COLUMNS + ") VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


def mixed_rows(count: int) -> list[tuple[Any, ...]]:
    """Rows whose parameter types change from row to row (int2/int4/int8, None...)."""
    ints = [0, 7, -40_000, 3_000_000_000, None, 2**62, 32_767, 32_768]
    rows = []
    for n in range(count):
        rows.append((
            n, ints[n % len(ints)], Decimal(f"{n}.25") if n % 3 else None,
            f"text {n} with 'quotes' and % signs" if n % 5 else None,
            bytes([n % 256, 0, 255]) if n % 2 else None, n / 7 if n % 4 else None,
            bool(n % 2) if n % 6 else None,
            dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=n) if n % 7 else None,
            Jsonb({"n": n, "list": [1, "two"]}) if n % 2 else None,
            uuid.UUID(int=n) if n % 3 else None,
        ))
    return rows


def table_rows(pg: PgSpec, name: str) -> list[tuple[Any, ...]]:
    with pg.open().transaction() as tx:
        return tx.fetchall(f"SELECT {COLUMNS} FROM {name} ORDER BY n")


def test_stores_exactly_what_psycopg_executemany_stores(pg: PgSpec) -> None:
    rows = mixed_rows(2 * SYNC_EVERY + 123)  # crosses sync points
    store = pg.open()
    with store.transaction() as tx:
        tx.execute(TABLE.format("ours"))
        tx.execute(TABLE.format("theirs"))
    with store.transaction() as tx:
        tx.executemany(INSERT.format("ours"), rows)
    with psycopg.connect(pg.url, options=f"-c search_path={pg.schema}") as conn:
        conn.cursor().executemany(INSERT.format("theirs"), rows)
    ours = table_rows(pg, "ours")
    assert len(ours) == len(rows)
    assert ours == table_rows(pg, "theirs")


def test_named_placeholders_repeated_names_and_literal_percent(pg: PgSpec) -> None:
    store = pg.open()
    with store.transaction() as tx:
        tx.execute("CREATE TABLE kv (k text PRIMARY KEY, a text, b text)")
        tx.executemany("INSERT INTO kv VALUES (%(k)s, %(v)s || '%%', %(v)s)",
                       [{"k": f"k{i}", "v": str(i)} for i in range(700)])
        rows = tx.fetchall("SELECT k, a, b FROM kv ORDER BY k")
    assert len(rows) == 700
    assert ("k42", "42%", "42") in rows


def test_an_upsert_per_row_sees_the_rows_before_it(pg: PgSpec) -> None:
    store = pg.open()
    upsert = ("INSERT INTO counts (k, n) VALUES (%s, 1) "
              "ON CONFLICT (k) DO UPDATE SET n = counts.n + 1")
    with store.transaction() as tx:
        tx.execute("CREATE TABLE counts (k text PRIMARY KEY, n int NOT NULL)")
        tx.executemany(upsert, [(f"k{i % 10}",) for i in range(3 * SYNC_EVERY)])
        rows = tx.fetchall("SELECT k, n FROM counts ORDER BY k")
    assert rows == [(f"k{i}", 3 * SYNC_EVERY // 10) for i in range(10)]


@pytest.mark.parametrize("bad_row", [2, SYNC_EVERY + 200])
def test_a_failing_row_raises_and_rolls_back_the_whole_transaction(
    pg: PgSpec, bad_row: int
) -> None:
    store = pg.open(pool_size=1)  # the same connection must serve the next transaction
    with store.transaction() as tx:
        tx.execute("CREATE TABLE uniq (k int PRIMARY KEY)")
    keys = list(range(SYNC_EVERY + 500))
    keys[bad_row] = 0  # a duplicate of the first row
    with pytest.raises(StoreError, match="unique") as caught, store.transaction() as tx:
        tx.execute("INSERT INTO uniq VALUES (-1)")
        tx.executemany("INSERT INTO uniq VALUES (%s)", [(k,) for k in keys])
    assert isinstance(caught.value.__cause__, psycopg.errors.UniqueViolation)
    with store.transaction() as tx:
        assert tx.fetchall("SELECT count(*) FROM uniq") == [(0,)]
        tx.executemany("INSERT INTO uniq VALUES (%s)", [(1,), (2,)])
    assert table_count(store, "uniq") == 2


def table_count(store: Any, name: str) -> int:
    with store.transaction() as tx:
        return int(tx.fetchall(f"SELECT count(*) FROM {name}")[0][0])


@pytest.mark.parametrize("bad", [object(), ("one", "two")])
def test_a_bad_parameter_set_raises_and_leaves_the_connection_usable(
    pg: PgSpec, bad: Any
) -> None:
    store = pg.open(pool_size=1)
    with store.transaction() as tx:
        tx.execute("CREATE TABLE vals (v text)")
    rows: list[Any] = [("a",)] * (SYNC_EVERY + 10) + [bad if isinstance(bad, tuple) else (bad,)]
    with pytest.raises(StoreError), store.transaction() as tx:
        tx.executemany("INSERT INTO vals VALUES (%s)", rows)
    with store.transaction() as tx:
        tx.executemany("INSERT INTO vals VALUES (%s)", [("b",)])
    assert table_count(store, "vals") == 1


def test_large_parameters_and_large_results_do_not_stall(pg: PgSpec) -> None:
    store = pg.open()
    with store.transaction() as tx:
        tx.execute("CREATE TABLE blobs (n int, body text)")
        tx.executemany("INSERT INTO blobs VALUES (%s, %s)",
                       [(n, "x" * 20_000) for n in range(1_500)])
        # 20 MB echoed back: the client must read results while it is still sending
        tx.executemany("SELECT %s::text", [("y" * 50_000,)] * 400)
        assert tx.fetchall("SELECT count(*), sum(length(body)) FROM blobs") == [
            (1_500, 30_000_000)]


def test_other_placeholders_go_to_psycopg() -> None:
    assert convert("INSERT INTO t VALUES (%s, %s)") == ("INSERT INTO t VALUES ($1, $2)", None, 2)
    assert convert("x %(a)s %(b)s %(a)s") == ("x $1 $2 $1", ("a", "b"), 2)
    assert convert("'5%%' %s") == ("'5%' $1", None, 1)
    assert convert("%b") is None
    assert convert("%s %(a)s") is None


def test_binary_placeholders_still_work_through_psycopg(pg: PgSpec) -> None:
    store = pg.open()
    with store.transaction() as tx:
        tx.execute("CREATE TABLE bin (v bigint)")
        tx.executemany("INSERT INTO bin VALUES (%b)", [(1,), (2,)])
        assert tx.fetchall("SELECT sum(v) FROM bin") == [(3,)]


ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 20.0  # seconds; the child needs about one


def run_child(pg: PgSpec, body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` with ``store`` (pool_size=1) open on the test's schema, or fail on a hang."""
    script = textwrap.dedent("""
        import sys
        from esctl_lib.errors import StoreError
        from esctl_lib.stores.postgres import PostgresStore
        store = PostgresStore(sys.argv[1], schema=sys.argv[2], pool_size=1)
        try:
        {body}
        finally:
            store.close()
        print("DONE")
    """).format(body=textwrap.indent(textwrap.dedent(body), "    "))
    try:
        done = subprocess.run([sys.executable, "-c", script, pg.url, pg.schema], cwd=ROOT,
                              capture_output=True, text=True, timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"executemany still running after {DEADLINE}s: it hangs")
    assert done.returncode == 0, done.stderr
    assert "DONE" in done.stdout
    return done


def test_copy_statement_does_not_spin_forever(pg: PgSpec) -> None:
    """A COPY goes to psycopg (which refuses it): in a pipeline libpq would answer every
    later read with another COPY result, and the loop would never end."""
    with pg.open().transaction() as tx:
        tx.execute("CREATE TABLE src (v int)")
        tx.execute("INSERT INTO src VALUES (1), (2)")
    run_child(pg, """
        try:
            with store.transaction() as tx:
                tx.executemany("COPY src TO STDOUT", [(), ()])
        except StoreError:
            pass
        with store.transaction() as tx:
            assert tx.fetchall("SELECT count(*) FROM src") == [(2,)]
    """)


def test_an_error_after_the_parse_is_sent_does_not_hang(pg: PgSpec) -> None:
    """An exception after a Parse or Bind/Execute went out (here: a faulty custom dumper
    returning str) still ends in a sync point, so the pipeline is settled instead of
    waiting for results the server sends only at a sync."""
    with pg.open().transaction() as tx:
        tx.execute("CREATE TABLE vals (v text)")
    run_child(pg, """
        from psycopg.adapt import Dumper

        class Odd:
            pass

        class BadDumper(Dumper):  # returns str instead of bytes
            def dump(self, obj):
                return "odd"

        try:
            with store.transaction() as tx:
                tx._conn.adapters.register_dumper(Odd, BadDumper)
                tx.executemany("INSERT INTO vals VALUES (%s)", [(Odd(),), (Odd(),)])
        except TypeError:
            pass
        with store.transaction() as tx:
            assert tx.fetchall("SELECT count(*) FROM vals") == [(0,)]
    """)


def test_a_composed_query_still_works(pg: PgSpec) -> None:
    """A ``psycopg.sql.Composed`` (or bytes) statement goes to psycopg's executemany."""
    store = pg.open()
    with store.transaction() as tx:
        tx.execute("CREATE TABLE vals (v text)")
        query = sql.SQL("INSERT INTO {} VALUES (%s)").format(sql.Identifier("vals"))
        tx.executemany(query, [("a",), ("b",)])  # type: ignore[arg-type]
        assert tx.fetchall("SELECT count(*) FROM vals") == [(2,)]


def test_mappings_for_a_query_without_placeholders_are_accepted(pg: PgSpec) -> None:
    """As psycopg and ``Transaction.execute`` do (``BatchTransaction.defer(sql, {})``)."""
    store = pg.open()
    with store.transaction() as tx:
        tx.execute("CREATE TABLE vals (v text)")
        tx.executemany("INSERT INTO vals VALUES ('x')", [{}, {}])
        assert tx.fetchall("SELECT count(*) FROM vals") == [(2,)]


def test_a_str_or_bytes_parameter_set_is_rejected(pg: PgSpec) -> None:
    """Not taken as a sequence of one-character parameters (psycopg raises TypeError)."""
    store = pg.open()
    with store.transaction() as tx:
        tx.execute("CREATE TABLE nums (v int)")
    with pytest.raises((TypeError, StoreError)), store.transaction() as tx:
        tx.executemany("INSERT INTO nums VALUES (%s)", [b"a"])  # type: ignore[list-item]
    with store.transaction() as tx:
        assert tx.fetchall("SELECT count(*) FROM nums") == [(0,)]


def test_parameters_for_a_query_without_placeholders_are_refused(pg: PgSpec) -> None:
    store = pg.open()
    with store.transaction() as tx:
        tx.execute("CREATE TABLE nums (v int)")
    with pytest.raises(StoreError, match="0 placeholders"), store.transaction() as tx:
        tx.executemany("INSERT INTO nums VALUES (1)", [("surplus",), ("surplus",)])
