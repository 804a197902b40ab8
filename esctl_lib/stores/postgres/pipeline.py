"""Many executions of one statement inside a transaction, sent as a libpq pipeline.

``psycopg``'s ``executemany`` pipelines too, but flushes the socket and runs its generator
machinery once per statement; for the thousands of small statements a projector defers
per batch, that is most of the batch's time. Here the statement is parsed once (again
only when the parameter types change), every execution is queued, and the socket is
flushed and drained once per :data:`SYNC_EVERY` executions. Parameters are adapted by
psycopg's own ``Transformer``, exactly as ``cursor.execute`` would bind them.

Only used inside an open transaction, on a connection not already in a pipeline, for a
``str`` statement with ``%s`` or ``%(name)s`` placeholders that is not a ``COPY``;
anything else goes to ``executemany``.
"""

from __future__ import annotations

import functools
import re
import select
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.errors import error_from_result

SYNC_EVERY = 500  # executions per round trip: bounds buffers and the work after an error
_PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]+)\))?(?P<kind>.)", re.DOTALL)
_COPY = re.compile(r"\s*copy\b", re.IGNORECASE)
_PIPELINES = pq.version() >= 140000  # pipeline mode needs libpq 14
_INTRANS = pq.TransactionStatus.INTRANS
_FATAL = pq.ExecStatus.FATAL_ERROR
_SYNCED = pq.ExecStatus.PIPELINE_SYNC
_COPYING = frozenset({pq.ExecStatus.COPY_IN, pq.ExecStatus.COPY_OUT, pq.ExecStatus.COPY_BOTH})
_POLLIN, _POLLOUT = select.POLLIN, select.POLLOUT


@functools.lru_cache(maxsize=256)
def convert(sql: str) -> tuple[str, tuple[str, ...] | None, int] | None:
    """``sql`` with ``$n`` placeholders: (text, names in order or None, count), or None
    when it uses anything but ``%s``, ``%(name)s`` and ``%%`` (or mixes the first two), or
    is a ``COPY`` (whose data would need a protocol of its own)."""
    if _COPY.match(sql):
        return None
    names: list[str] = []
    positional = 0
    out: list[str] = []
    last = 0
    for m in _PLACEHOLDER.finditer(sql):
        out.append(sql[last:m.start()])
        last = m.end()
        name, kind = m.group("name"), m.group("kind")
        if name is None and kind == "%":
            out.append("%")
        elif kind != "s":
            return None
        elif name is None:
            positional += 1
            out.append(f"${positional}")
        else:
            if name not in names:
                names.append(name)
            out.append(f"${names.index(name) + 1}")
    out.append(sql[last:])
    if positional and names:
        return None
    return "".join(out), (tuple(names) if names else None), positional or len(names)


def execute_many(conn: psycopg.Connection[Any], sql: str,
                 params: Sequence[Sequence[Any] | Mapping[str, Any]]) -> None:
    """Run ``sql`` once per parameter set, on ``conn`` inside its open transaction.

    A failing execution raises the server's error as psycopg would (the transaction is
    then aborted, as with any failed statement).
    """
    plan = convert(sql) if sql.__class__ is str else None  # Composed, bytes: psycopg's
    pg = conn.pgconn
    if (plan is None or not _PIPELINES or not params
            or pg.transaction_status != _INTRANS or pg.pipeline_status != pq.PipelineStatus.OFF):
        conn.cursor().executemany(sql, params)
        return
    text, names, count = plan
    query = text.encode(conn.info.encoding)
    transformer = Transformer.from_context(conn)
    formats = [PyFormat.AUTO] * count
    types: Sequence[int] | None = None
    error: pq.abc.PGresult | None = None
    queued = 0  # executions since the last sync point (counted before they are sent)
    pg.enter_pipeline_mode()
    try:
        for values in params:
            row = _row(values, names, count)
            dumped = transformer.dump_sequence(row, formats)
            queued += 1
            if transformer.types != types:
                types = transformer.types
                pg.send_prepare(b"", query, types)
            pg.send_query_prepared(b"", dumped, transformer.formats)
            if queued == SYNC_EVERY:
                error = _sync(pg)
                queued = 0
                if error is not None:
                    break
        if queued and error is None:
            error = _sync(pg)
    except BaseException:
        _abandon(pg)
        raise
    pg.exit_pipeline_mode()
    if error is not None:
        raise error_from_result(error, encoding=conn.info.encoding)


def _row(values: Sequence[Any] | Mapping[str, Any], names: tuple[str, ...] | None,
         count: int) -> Sequence[Any]:
    """One parameter set as a sequence in placeholder order (psycopg's checks and errors)."""
    if values.__class__ is tuple and names is None and len(values) == count:
        return values  # the common case, without the ABC checks below (~0.6 us a row)
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | Mapping):
        raise TypeError(f"query parameters should be a sequence or a mapping, "
                        f"got {type(values).__name__}")
    if count == 0 and (isinstance(values, Mapping) or not values):
        return ()
    if names is not None:
        if not isinstance(values, Mapping):
            raise TypeError(f"named placeholders need a mapping, got {type(values).__name__}")
        missing = [n for n in names if n not in values]
        if missing:
            raise psycopg.ProgrammingError(f"query parameter missing: {', '.join(missing)}")
        return [values[n] for n in names]
    if isinstance(values, Mapping) or len(values) != count:
        raise psycopg.ProgrammingError(
            f"the query has {count} placeholders but {len(values)} parameters were passed")
    return values


def _abandon(pg: pq.abc.PGconn) -> None:
    """After an exception: settle what was sent and leave pipeline mode, if the connection
    still allows it (if not, it is broken, and psycopg and the pool treat it so). A sync
    point is always added: one too many does no harm, one too few leaves the server's
    results unsent and this waiting for them."""
    try:
        _sync(pg)
        for _attempt in range(3):
            try:
                pg.exit_pipeline_mode()
                return
            except psycopg.OperationalError:  # results of an interrupted sync are left
                _collect(pg)
    except psycopg.Error:
        pass


def _sync(pg: pq.abc.PGconn) -> pq.abc.PGresult | None:
    """Send what is queued plus a sync point, and read every result up to it."""
    pg.pipeline_sync()
    return _collect(pg)


def flush(pg: pq.abc.PGconn, tick_ms: int | None = None) -> select.poll:
    """Send what is queued on the nonblocking ``pg``, taking results in as they come so
    neither side stalls; the poller it waited with, now waiting for input. Polls wake
    every ``tick_ms`` when given (else only on the socket)."""
    poller = select.poll()
    poller.register(pg.socket, _POLLIN | _POLLOUT)
    while pg.flush():  # nonblocking: 1 while data is left to send
        for _fd, events in poller.poll(tick_ms):
            if events & _POLLIN:
                pg.consume_input()
    poller.modify(pg.socket, _POLLIN)
    return poller


def _collect(pg: pq.abc.PGconn) -> pq.abc.PGresult | None:
    """Flush, then read results up to the next sync point. Returns the first error (the
    server skipped the executions after it), or None."""
    poller = flush(pg)
    error = None
    ended = False
    while True:
        while pg.is_busy():
            poller.poll()
            pg.consume_input()
        result = pg.get_result()
        if result is None:  # the end of one execution's results
            if ended:  # twice in a row: nothing is pending at all
                return error
            ended = True
            continue
        ended = False
        if result.status == _SYNCED:
            return error
        if result.status == _FATAL and error is None:
            error = result
        elif result.status in _COPYING:  # not ours to serve (see convert): give it up
            pg.finish()
            raise psycopg.OperationalError("COPY cannot run through executemany; "
                                           "the connection was closed")
