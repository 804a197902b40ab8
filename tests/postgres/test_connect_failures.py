"""A store that cannot connect says why, at once when no retry can help, else within
``connect_timeout``; never with its password, and without driver warnings in the log."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest

from esctl_lib import ConfigError, StoreUnavailableError
from esctl_lib.stores.postgres import PostgresStore
from tests.backends import require_postgres

CONNECT_TIMEOUT = 2.0
PERMANENT_WITHIN = 1.5
TRANSIENT_WITHIN = CONNECT_TIMEOUT + 1.5


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never answers (a connection times out)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield int(s.getsockname()[1])


def failure(url: str, caplog: pytest.LogCaptureFixture) -> tuple[Exception, float]:
    """The error of a first read on ``url``, and how long it took to come."""
    caplog.set_level(logging.INFO, logger="psycopg.pool")
    store = PostgresStore(url, connect_timeout=CONNECT_TIMEOUT)
    started = time.monotonic()
    try:
        with pytest.raises((ConfigError, StoreUnavailableError)) as raised:
            store.latest_position()
        return raised.value, time.monotonic() - started
    finally:
        store.close()


def assert_quiet(caplog: pytest.LogCaptureFixture) -> None:
    loud = [r for r in caplog.records if r.levelno > logging.DEBUG]
    assert loud == [], [r.getMessage() for r in loud]


PERMANENT = {
    "unknown database": ("postgresql://postgres:secret@127.0.0.1:5432/esctl_no_such_db",
                         'database "esctl_no_such_db" does not exist'),
    "unknown role": ("postgresql://esctl_no_such_role:secret@127.0.0.1:5432/test",
                     'role "esctl_no_such_role" does not exist'),
    "bad sslmode": ("postgresql://postgres:secret@127.0.0.1:5432/test?sslmode=bogus",
                    'invalid sslmode value: "bogus"'),
    "bad option": ("host=127.0.0.1 user=postgres password=secret dbname=test bogusopt=1",
                   'invalid connection option "bogusopt"'),
}


@pytest.mark.parametrize("case", sorted(PERMANENT))
def test_a_cause_no_retry_can_fix_is_a_config_error_at_once(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    require_postgres()
    url, cause = PERMANENT[case]
    error, took = failure(url, caplog)
    assert isinstance(error, ConfigError)
    assert cause in str(error)
    assert str(error).startswith("cannot connect to PostgreSQL at ")
    assert "secret" not in str(error)
    assert took < PERMANENT_WITHIN
    assert_quiet(caplog)


def test_a_refused_connection_names_the_address_and_fails_within_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = closed_port()
    error, took = failure(f"postgresql://postgres:secret@127.0.0.1:{port}/test", caplog)
    assert isinstance(error, StoreUnavailableError)
    assert str(error).startswith(f"cannot connect to PostgreSQL at 127.0.0.1:{port}: "
                                 "connection refused")
    assert "secret" not in str(error)
    assert took <= TRANSIENT_WITHIN
    assert_quiet(caplog)


def test_an_unknown_host_is_named_and_fails_within_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error, took = failure("postgresql://postgres:secret@nonexistent.invalid:5432/test?"
                          "password=secret", caplog)
    assert isinstance(error, StoreUnavailableError)
    assert 'could not translate host name "nonexistent.invalid"' in str(error)
    assert "secret" not in str(error)
    assert took <= TRANSIENT_WITHIN
    assert_quiet(caplog)


def test_a_server_that_never_answers_times_out_within_the_timeout(
    silent_server: int, caplog: pytest.LogCaptureFixture
) -> None:
    error, took = failure(f"postgresql://postgres:secret@127.0.0.1:{silent_server}/test",
                          caplog)
    assert isinstance(error, StoreUnavailableError)
    assert "timed out" in str(error)
    assert took <= TRANSIENT_WITHIN
    assert_quiet(caplog)


def test_a_driver_message_that_echoes_the_dsn_is_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error, took = failure("postgresql://postgres:secret@[::1:5432/test", caplog)
    assert isinstance(error, ConfigError)
    assert "IPv6 host address" in str(error)
    assert "secret" not in str(error)
    assert took < PERMANENT_WITHIN



def test_a_processor_lock_that_cannot_log_in_is_a_config_error_naming_the_cause() -> None:
    require_postgres()
    store = PostgresStore("postgresql://esctl_no_such_role:secret@127.0.0.1:5432/test",
                          connect_timeout=CONNECT_TIMEOUT)
    lock = store.processor_lock("proc")
    try:
        with pytest.raises(ConfigError, match='role "esctl_no_such_role" does not exist'):
            lock.try_acquire()
    finally:
        lock.close()
        store.close()
