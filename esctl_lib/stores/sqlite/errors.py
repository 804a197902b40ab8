"""sqlite3 errors turned into the library's errors: the one place that does it."""

from __future__ import annotations

import sqlite3
from typing import Literal

from esctl_lib.errors import (
    DuplicateEventError,
    InvalidEventError,
    SchemaError,
    StoreError,
    StoreUnavailableError,
)


class _Translate:
    """Context manager behind :func:`translate_errors` (stateless, so one serves all)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> Literal[False]:
        if isinstance(exc, sqlite3.DatabaseError):
            raise translated(exc) from exc
        if isinstance(exc, UnicodeEncodeError):  # a lone surrogate in a parameter
            raise InvalidEventError(
                "SQLite cannot take text that is not valid Unicode (a lone surrogate)"
            ) from exc
        if isinstance(exc, OverflowError):  # a parameter beyond SQLite's 64-bit integers
            raise InvalidEventError(f"SQLite cannot take this number: {exc}") from exc
        return False


_TRANSLATE = _Translate()


def translate_errors() -> _Translate:
    """Turn sqlite3 errors raised inside the block into the library's errors; a parameter
    sqlite3 cannot bind (text with a lone surrogate, an integer beyond 64 bits) is
    :class:`InvalidEventError`."""
    return _TRANSLATE


def translated(e: sqlite3.DatabaseError) -> StoreError:
    """The library error for a sqlite3 error. A duplicate uuid comes back unnamed: the
    append that hit it names it (see ``SqliteTransaction.append``)."""
    text = str(e)
    if isinstance(e, sqlite3.IntegrityError):
        if "events.uuid" in text:
            return DuplicateEventError()
        return StoreError(f"SQLite integrity error: {text}")
    if isinstance(e, sqlite3.OperationalError):
        if "no such table" in text:
            return SchemaError(f"the store is not set up ({text}); run `esctl setup`")
        if "locked" in text or "busy" in text:
            return StoreUnavailableError(f"SQLite database is busy: {text}")
        if "unable to open" in text or "disk" in text or "readonly" in text:
            return StoreUnavailableError(f"SQLite database unavailable: {text}")
    return StoreError(f"SQLite error: {text}")
