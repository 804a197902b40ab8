"""The autocommit append's statements, prepared once per connection and sent through libpq.

``cursor.execute`` converts the placeholders, runs its prepared-statement manager, adapts
every parameter and builds a result object on every call. Sending the prepared statement
directly saves 8 to 11 µs of client CPU per one-event save on this host class
(``bench/README.md``, session 13). The append's few statements are known, and their
parameters are only text, integers, times and NULLs. So here each statement is prepared
under a name of its own the first time a connection sends it, then executed with text
parameters; the ids come back from the libpq result.

What stays as with the cursor: errors become psycopg's exceptions (``error_from_result``),
so the store translates them as any other; Ctrl-C while the server works cancels the
statement there before it is raised; a statement the server no longer knows (a
connection reset behind our back) is prepared again. A connection whose client encoding
is not UTF-8 uses the cursor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result

from esctl_lib.stores.postgres.pipeline import convert, flush
from esctl_lib.stores.postgres.pool import cursor

_OK = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)
_ACTIVE = pq.TransactionStatus.ACTIVE
_UNKNOWN_STATEMENT = b"26000"  # invalid_sql_statement_name: not prepared on this session
_TICK_MS = 100
_names: dict[str, tuple[bytes, bytes]] = {}


def _statement(query: str) -> tuple[bytes, bytes]:
    """The prepared statement's name and text for ``query`` (``%s`` placeholders)."""
    found = _names.get(query)
    if found is None:
        plan = convert(query)
        assert plan is not None and plan[1] is None, query  # positional placeholders only
        name = "esctl_" + hashlib.sha1(query.encode()).hexdigest()[:16]
        found = _names[query] = (name.encode(), plan[0].encode())
    return found


def _text(value: Any) -> bytes | None:
    """A parameter in PostgreSQL's text form (the server infers its type)."""
    cls = value.__class__
    if cls is str:
        return value.encode()  # type: ignore[no-any-return]
    if value is None:
        return None
    if cls is int:
        return str(value).encode()
    if isinstance(value, dt.datetime):
        return value.isoformat().encode()
    raise TypeError(f"no text form for an append parameter of type {cls.__name__}")


def first_column(conn: psycopg.Connection[Any], query: str,
                 params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run ``query`` on the autocommit ``conn``; the rows as ``(int(first column),)``, as
    the cursor's ``fetchall()`` would give them for an ``id`` column."""
    if conn.info.encoding != "utf-8":
        return cursor(conn).execute(query, params).fetchall()
    name, text = _statement(query)
    values = [_text(v) for v in params]
    with conn.lock:
        prepared: set[bytes] | None = getattr(conn, "_esctl_prepared", None)
        if prepared is None:
            prepared = conn._esctl_prepared = set()  # type: ignore[attr-defined]
        result = _run(conn, prepared, name, text, values)
        if (result.status not in _OK
                and result.error_field(pq.DiagnosticField.SQLSTATE) == _UNKNOWN_STATEMENT):
            prepared.discard(name)  # deallocated behind our back: prepare it again
            result = _run(conn, prepared, name, text, values)
        _check(conn, result)
    get = result.get_value
    return [(int(get(row, 0)),) for row in range(result.ntuples)]  # type: ignore[arg-type]


def _run(conn: psycopg.Connection[Any], prepared: set[bytes], name: bytes, text: bytes,
         values: Sequence[bytes | None]) -> pq.abc.PGresult:
    """Execute the named statement, preparing it first where this connection has not."""
    pg = conn.pgconn
    if name not in prepared:
        pg.send_prepare(name, text)
        _check(conn, _result(conn, pg))
        prepared.add(name)
    pg.send_query_prepared(name, values)
    return _result(conn, pg)


def _check(conn: psycopg.Connection[Any], result: pq.abc.PGresult) -> None:
    if result.status not in _OK:
        raise error_from_result(result, encoding=conn.info.encoding)


def _result(conn: psycopg.Connection[Any], pg: pq.abc.PGconn) -> pq.abc.PGresult:
    """Flush what was sent and wait for the statement's result (the last of its results).
    Interrupted while the server works, the statement is cancelled there first."""
    try:
        return _wait(pg)
    except BaseException:
        if pg.transaction_status == _ACTIVE:
            with suppress(psycopg.Error, OSError):
                conn.cancel_safe(timeout=5.0)
                _wait(pg)
        raise


def _wait(pg: pq.abc.PGconn) -> pq.abc.PGresult:
    """The statement's last result. Polls wake every ``_TICK_MS``: a signal another thread
    took (SIGINT) is only raised here once the main thread runs Python again."""
    poller = flush(pg, _TICK_MS)
    last: pq.abc.PGresult | None = None
    while True:
        while pg.is_busy():
            if poller.poll(_TICK_MS):
                pg.consume_input()
        result = pg.get_result()
        if result is None:
            break
        last = result
    if last is None:
        raise psycopg.OperationalError("the server sent no result for the append")
    return last
