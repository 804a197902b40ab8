"""psycopg errors turned into the library's errors: every translation of the PostgreSQL
backend lives here (the store's, the pool's and the processor lock's)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from esctl_lib.errors import (
    ConfigError,
    DuplicateEventError,
    EsctlError,
    InvalidEventError,
    SchemaError,
    StoreError,
    StoreUnavailableError,
)
from esctl_lib.stores.dsn import redact_secrets

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


def lock_connect_error(e: psycopg.Error, display_url: str, name: str,
                       secrets: tuple[str, ...] = ()) -> EsctlError:
    """A processor lock could not open its connection (``display_url`` is masked): a
    :class:`ConfigError` when no retry can fix it, else :class:`StoreUnavailableError`."""
    cause = connect_cause(e)
    message = redact_secrets(
        f"cannot connect to {display_url} for processor lock {name!r}: {cause}", secrets)
    return ConfigError(message) if is_permanent(e, cause) else StoreUnavailableError(message)


def lock_query_error(e: psycopg.Error, name: str) -> StoreUnavailableError:
    """A processor lock's connection failed: the lock is lost with its session."""
    return StoreUnavailableError(f"processor lock {name!r}: {first_line(e)}")


def first_line(e: BaseException) -> str:
    """The first line of an error's text (psycopg adds detail lines), or its class name."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# -- connecting ------------------------------------------------------------------------------
# The patterns below are compiled on first use (re's cache), not at import: only a failed
# connection needs them, and compiling them was a measurable part of esctl's start-up.
#: libpq's prefixes before the cause (``connection to server at "h", port 5432 failed: ``).
_CONNECT_PREFIXES = (
    r"^(?:connection failed: )?(?:connection to server (?:at|on) .*? failed: )?"
    r"(?:connection is bad: )?(?:FATAL:\s+)?"
)
_RESOLVE = r"failed to resolve host '(?P<host>[^']*)': (?:\[Errno [^\]]*\] )?(?P<why>.*)"
#: SQLSTATEs of connection failures that no retry can fix (the server rarely gives one at
#: connect time, so the message is matched too).
_PERMANENT_STATES = {"28000", "28P01", "3D000", "42704"}
_PERMANENT_TEXT = (
    r"authentication failed|role \".*\" does not exist|database \".*\" does not exist"
    r"|no pg_hba\.conf entry|invalid sslmode|invalid connection option|invalid .*value"
    r"|does not support SSL|certificate|sslrootcert|sslcert|sslkey|password is required"
    r"|requires a password|not permitted to log in|is not permitted"
)


def connect_error(e: BaseException, where: str, secrets: tuple[str, ...] = ()) -> EsctlError:
    """The library error for a failed connection attempt to ``where`` (``host:port``).

    A cause no retry can fix (authentication, an unknown database or role, a bad option or
    DSN) is a :class:`ConfigError`; anything else (refused, unknown host, timeout, a server
    starting up) is a :class:`StoreUnavailableError`. The driver's text is redacted.
    """
    cause = connect_cause(e)
    message = redact_secrets(f"cannot connect to PostgreSQL at {where}: {cause}", secrets)
    if is_permanent(e, cause):
        return ConfigError(message)
    return StoreUnavailableError(message)


def connect_cause(e: BaseException) -> str:
    """The cause of a failed connection in one line, without libpq's prefixes."""
    if isinstance(e, psycopg.errors.ConnectionTimeout):
        return "timed out (connect_timeout expired)"
    text = first_line(e)
    text = re.sub(_CONNECT_PREFIXES, "", text, count=1).strip()
    resolve = re.match(_RESOLVE, text)
    if resolve:
        return (f"could not translate host name \"{resolve['host']}\" to an address: "
                f"{resolve['why']}")
    if text.lower() == "connection refused":
        return "connection refused (is the server running and accepting TCP/IP connections?)"
    return text or type(e).__name__


def is_permanent(e: BaseException, cause: str) -> bool:
    """Whether no retry can fix this connection failure (see :func:`connect_error`)."""
    if isinstance(e, psycopg.ProgrammingError | psycopg.errors.InvalidAuthorizationSpecification):
        return True
    state = getattr(e, "sqlstate", None)
    return state in _PERMANENT_STATES or re.search(_PERMANENT_TEXT, cause, re.IGNORECASE) is not None
