"""Moving a stream out of a store and into another: JSON lines with every field.

``export_events`` streams in constant memory. ``import_events`` checks the whole input
before writing anything (so bad input writes nothing), then appends in order, one
transaction per batch of lines, one append per run of consecutive events of an aggregate.
It keeps uuids, bodies, created_at, correlation and causation ids and metadata, checks that
each aggregate's events continue its version in the target store, and skips events whose
uuid is already stored, so an interrupted import can simply be run again.
"""

from __future__ import annotations

import os
import secrets
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from esctl_lib.errors import (
    ConcurrencyError,
    EsctlError,
    InvalidEventError,
    UnknownEventTypeError,
)
from esctl_lib.events import Event, EventRegistry
from esctl_lib.files import FILE_MODE
from esctl_lib.operations.records import check_typed_body, event_json, parse_record
from esctl_lib.stores.base import DEFAULT_PAGE_SIZE, EventStore, Transaction

#: ``progress(done, total)``; ``total`` is None when unknown.
Progress = Callable[[int, int | None], None]


def export_events(
    store: EventStore,
    out: IO[str] | str | Path,
    *,
    types: Collection[str] | None = None,
    after: int = 0,
    progress: Progress | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> int:
    """Write events after ``after`` (of ``types``) up to today's head as JSON lines.

    ``out`` is a text stream, or a path written atomically (a temporary file renamed into
    place at the end, so a failed export never leaves a partial file). Returns the count.
    """
    if isinstance(out, str | Path):
        return _export_to_path(store, Path(out), types, after, progress, page_size)
    type_filter = list(types) if types else None
    head = store.latest_position()
    total = store.count(after=after, types=type_filter) if progress else None
    done = 0
    for event in store.iter_range(after, head, types=type_filter, page_size=page_size):
        out.write(event_json(event))
        out.write("\n")
        done += 1
        if progress is not None and done % page_size == 0:
            progress(done, total)
    if progress is not None:
        progress(done, total)
    out.flush()
    return done


def _export_to_path(
    store: EventStore,
    path: Path,
    types: Collection[str] | None,
    after: int,
    progress: Progress | None,
    page_size: int,
) -> int:
    path = path.resolve()
    temporary: list[str] = []
    with _removed_on_sigterm(temporary):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        temporary.append(tmp)  # before it exists: a SIGTERM from here on removes it
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                _keep_mode_of(path, f.fileno())
                count = export_events(store, f, types=types, after=after, progress=progress,
                                      page_size=page_size)
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:  # a missing folder, no permission, a full disk
            Path(tmp).unlink(missing_ok=True)
            raise EsctlError(f"cannot write {path}: {e.strerror or e}") from e
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            temporary.clear()
    return count


def _keep_mode_of(path: Path, fd: int) -> None:
    """An export that replaces an existing file keeps that file's permissions."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    os.fchmod(fd, mode)


@contextmanager
def _removed_on_sigterm(paths: list[str]) -> Iterator[None]:
    """While the block runs, a SIGTERM first removes ``paths``, then ends the process as
    SIGTERM would have (its default action kills at once, so no ``except``/``finally``
    would remove a temporary file). Only where SIGTERM has its default action, in the
    main thread; a program with its own SIGTERM handler keeps it."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        for path in paths:
            Path(path).unlink(missing_ok=True)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did: events appended, and events skipped as already stored."""

    imported: int
    skipped: int

    @property
    def total(self) -> int:
        """Every event read from the input."""
        return self.imported + self.skipped


def import_events(
    store: EventStore,
    source: IO[str] | str | Path,
    *,
    registry: EventRegistry | None = None,
    batch_size: int = DEFAULT_PAGE_SIZE,
    progress: Progress | None = None,
) -> ImportResult:
    """Append the events of an export (a path or a text stream) to ``store``, in order.

    With a ``registry``, every type must be registered in it (``None`` allows any type).
    The input is checked completely first; an error names the line and nothing is written.
    A version that does not continue the aggregate's version in the store stops the
    import at that batch (earlier batches stay; running the import again skips them).
    """
    if batch_size < 1:
        raise InvalidEventError("batch size must be >= 1")
    with _seekable(source) as f:
        total = check_import(f, registry)
        f.seek(0)
        return _write_batches(store, f, batch_size, total, progress)


class _seekable:
    """The input as a seekable text file: the path itself, or a stream spooled to an
    anonymous temporary file (owner-only, removed on close) so it can be read twice."""

    def __init__(self, source: IO[str] | str | Path) -> None:
        self._source = source
        self._file: IO[str] | None = None
        self._owned = False

    def __enter__(self) -> IO[str]:
        src = self._source
        if isinstance(src, str | Path):
            try:
                # Bytes that are not UTF-8 read as lone surrogates: _lines names their line.
                self._file = Path(src).open(encoding="utf-8", errors="surrogateescape",
                                            newline="\n")
            except OSError as e:
                raise InvalidEventError(f"cannot read {src}: {e.strerror}") from e
            self._owned = True
        elif src.seekable():
            self._file = src
        else:
            self._file, self._owned = _spool(src), True
        return self._file

    def __exit__(self, *exc: object) -> None:
        if self._owned and self._file is not None:
            self._file.close()


def _spool(src: IO[str]) -> IO[str]:
    try:
        spool = tempfile.TemporaryFile(  # noqa: SIM115 (returned open; mode 0600)
            "w+", encoding="utf-8", errors="surrogateescape", newline="\n")
    except OSError as e:
        raise EsctlError(f"cannot make a temporary file for the input: {e.strerror}") from e
    try:
        with _reading():
            while chunk := src.read(1 << 16):
                try:
                    spool.write(chunk)
                except OSError as e:
                    raise EsctlError(
                        f"cannot spool the input to a temporary file: {e.strerror}") from e
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


@contextmanager
def _reading(where: str = "input") -> Iterator[None]:
    """Reading the input: a decoding or I/O error is :class:`InvalidEventError`."""
    try:
        yield
    except UnicodeDecodeError as e:
        raise InvalidEventError(f"{where} is not UTF-8 text: {e}") from e
    except OSError as e:
        raise InvalidEventError(f"cannot read the {where}: {e.strerror or e}") from e


def _lines(f: IO[str]) -> Iterator[tuple[int, str]]:
    with _reading():
        for number, line in enumerate(f, start=1):
            if not line.isascii():
                _check_utf8(line, number)
            if line.strip():
                yield number, line


def _check_utf8(line: str, number: int) -> None:
    try:
        line.encode("utf-8")
    except UnicodeEncodeError as e:
        char = ord(line[e.start])
        what = f"byte 0x{char - 0xDC00:02x}" if 0xDC80 <= char <= 0xDCFF else "a lone surrogate"
        raise InvalidEventError(
            f"line {number}: not UTF-8 text ({what} at character {e.start + 1})") from e


def check_import(f: IO[str], registry: EventRegistry | None) -> int:
    """Check every line of an export as the stores will (fields, type names, bodies and
    metadata against :func:`~esctl_lib.serialization.validate_body`, versions that follow
    each other); returns the number of events. Writes nothing; memory grows only with the
    number of aggregates. The first bad line raises :class:`InvalidEventError`
    (``line 12: body.amount: nan is not a finite number``)."""
    versions: dict[str, int] = {}
    count = 0
    for number, line in _lines(f):
        event = parse_record(line, f"line {number}")
        if registry is not None and not registry.is_known(event.type):
            raise InvalidEventError(
                f"line {number}: {UnknownEventTypeError(event.type)} "
                "(configure the module that defines it in [app] events, "
                "or allow unknown types)"
            )
        if registry is not None:
            check_typed_body(registry, event, f"line {number}")
        previous = versions.get(event.aggregate_id)
        if previous is not None and event.version != previous + 1:
            raise InvalidEventError(
                f"line {number}: aggregate {event.aggregate_id} jumps from version "
                f"{previous} to {event.version}"
            )
        versions[event.aggregate_id] = event.version or 0
        count += 1
    return count


def _write_batches(
    store: EventStore, f: IO[str], batch_size: int, total: int, progress: Progress | None
) -> ImportResult:
    imported = skipped = 0
    batch: list[tuple[int, Event]] = []
    for number, line in _lines(f):
        batch.append((number, parse_record(line, f"line {number}")))
        if len(batch) >= batch_size:
            added, already = _write_batch(store, batch, imported)
            imported, skipped, batch = imported + added, skipped + already, []
            if progress is not None:
                progress(imported + skipped, total)
    if batch:
        added, already = _write_batch(store, batch, imported)
        imported, skipped = imported + added, skipped + already
    if progress is not None:
        progress(imported + skipped, total)
    return ImportResult(imported, skipped)


def _write_batch(
    store: EventStore, batch: list[tuple[int, Event]], imported_before: int
) -> tuple[int, int]:
    stored = store.existing_uuids([e.uuid for _, e in batch])
    todo = [(n, e) for n, e in batch if e.uuid not in stored]
    if todo:
        with store.transaction() as tx:
            for run in _runs(todo):
                _append_run(tx, run, imported_before)
    return len(todo), len(batch) - len(todo)


def _runs(items: list[tuple[int, Event]]) -> Iterator[list[tuple[int, Event]]]:
    run: list[tuple[int, Event]] = []
    for item in items:
        if run and item[1].aggregate_id != run[-1][1].aggregate_id:
            yield run
            run = []
        run.append(item)
    if run:
        yield run


def _append_run(tx: Transaction, run: list[tuple[int, Event]], imported_before: int) -> None:
    number, first = run[0]
    expected = (first.version or 1) - 1
    try:
        tx.append([e for _, e in run], expected_version=expected)
    except ConcurrencyError as e:
        raise InvalidEventError(
            f"line {number}: aggregate {first.aggregate_id} is at version {e.actual} in the "
            f"store, but the input continues it with version {first.version}; this batch "
            f"was not written ({imported_before} events were imported before it)"
        ) from None
