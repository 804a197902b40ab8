"""psycopg errors turned into the library's errors: every translation of the PostgreSQL
backend lives here (the store's, the pool's and the processor lock's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from esctl_lib.errors import (
    DuplicateEventError,
    EsctlError,
    InvalidEventError,
    SchemaError,
    StoreError,
    StoreUnavailableError,
)

UUID_CONSTRAINT = "events_uuid_key"
VERSION_CONSTRAINT = "events_aggregate_version_key"
#: Builds the error for a unique violation, given the constraint's name (or None: default).
UniqueHandler = Callable[[str | None], EsctlError | None]
#: What :func:`translate_errors` catches.
DRIVER_ERRORS = (psycopg.Error, PoolTimeout)


class TranslateErrors:
    """Context manager turning psycopg errors into the library's errors (see translate_errors)."""

    __slots__ = ("on_unique",)

    def __init__(self, on_unique: UniqueHandler | None = None) -> None:
        self.on_unique = on_unique

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> Literal[False]:
        if isinstance(exc, UnicodeEncodeError):  # a lone surrogate in a parameter
            raise InvalidEventError(
                "PostgreSQL cannot take text that is not valid Unicode (a lone surrogate)"
            ) from exc
        if exc is None or not isinstance(exc, DRIVER_ERRORS):
            return False
        raise translate(exc, self.on_unique) from exc


_PLAIN = TranslateErrors()


def translate_errors(on_unique: UniqueHandler | None = None) -> TranslateErrors:
    """Turn psycopg errors raised inside the block into the library's errors.

    ``on_unique`` may build the error for a unique violation (given the constraint name).
    """
    return _PLAIN if on_unique is None else TranslateErrors(on_unique)


def translate(e: BaseException, on_unique: UniqueHandler | None = None) -> EsctlError:
    """The library error for a psycopg (or pool) error."""
    if isinstance(e, pg_errors.UniqueViolation):
        constraint = e.diag.constraint_name
        built = on_unique(constraint) if on_unique is not None else None
        if built is not None:
            return built
        if constraint == UUID_CONSTRAINT:
            return DuplicateEventError()
        if constraint == VERSION_CONSTRAINT:
            return StoreError(f"a concurrent append took this aggregate version: {first_line(e)}")
        return StoreError(f"PostgreSQL unique violation: {first_line(e)}")
    if isinstance(e, pg_errors.UndefinedTable | pg_errors.InvalidSchemaName):
        return SchemaError(f"the store is not set up ({first_line(e)}); run `esctl setup`")
    if isinstance(e, psycopg.DataError):  # bad input: NUL in text, a number out of range
        return InvalidEventError(f"PostgreSQL cannot take this value: {first_line(e)}")
    if isinstance(e, psycopg.OperationalError | psycopg.InterfaceError | PoolTimeout):
        return StoreUnavailableError(f"PostgreSQL unavailable: {first_line(e)}")
    return StoreError(f"PostgreSQL error: {first_line(e)}")


def is_undefined_table(e: BaseException) -> bool:
    """True for "relation does not exist" (a store that is not set up)."""
    return isinstance(e, pg_errors.UndefinedTable)


def lock_connect_error(e: psycopg.Error, display_url: str, name: str) -> StoreUnavailableError:
    """A processor lock could not open its connection (``display_url`` is masked)."""
    return StoreUnavailableError(
        f"cannot connect to {display_url} for processor lock {name!r}: {first_line(e)}"
    )


def lock_query_error(e: psycopg.Error, name: str) -> StoreUnavailableError:
    """A processor lock's connection failed: the lock is lost with its session."""
    return StoreUnavailableError(f"processor lock {name!r}: {first_line(e)}")


def first_line(e: BaseException) -> str:
    """The first line of an error's text (psycopg adds detail lines), or its class name."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
