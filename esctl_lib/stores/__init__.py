"""Event store backends and the factory that picks one from a URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from esctl_lib.errors import ConfigError
from esctl_lib.stores.base import EventStore, Page, ReaderHorizon, StreamKey, Transaction
from esctl_lib.stores.dsn import classify, mask_url
from esctl_lib.stores.locks import ProcessorLock

__all__ = [
    "EventStore",
    "Page",
    "ProcessorLock",
    "ReaderHorizon",
    "StreamKey",
    "Transaction",
    "mask_url",
    "open_store",
]


#: Why a PostgreSQL URL cannot be opened without the driver.
NO_PSYCOPG = "PostgreSQL support needs psycopg: pip install 'esctl[postgres]'"


def postgres_kwargs(kwargs: dict[str, Any], connect_timeout: float | None,
                    idle_in_transaction_timeout: float | None) -> dict[str, Any]:
    """A PostgreSQL store's keyword arguments: ``kwargs`` with the timeouts that were given
    (:func:`open_store` and :func:`~esctl_lib.stores.aio.open_async_store` take them by name)."""
    if connect_timeout is not None:
        kwargs["connect_timeout"] = connect_timeout
    if idle_in_transaction_timeout is not None:
        kwargs["idle_in_transaction_timeout"] = idle_in_transaction_timeout
    return kwargs


def open_store(
    url: str,
    *,
    base_dir: str | Path | None = None,
    schema: str | None = None,
    synchronous: str = "FULL",
    connect_timeout: float | None = None,
    idle_in_transaction_timeout: float | None = None,
    **kwargs: Any,
) -> EventStore:
    """Open the store a URL names: ``memory://``, ``sqlite:///path.db`` or ``postgresql://...``.

    A relative SQLite path resolves against ``base_dir`` (default: the current directory).
    ``schema`` puts PostgreSQL tables in a named schema; ``connect_timeout`` bounds each
    attempt to connect to a server, and ``idle_in_transaction_timeout`` (seconds) ends a
    PostgreSQL session of the store's that sits idle in a transaction that long (a
    file-based store ignores these). Backends are imported lazily, so SQLite users never
    need psycopg. Extra keyword arguments go to the backend.
    """
    scheme = classify(url) or ""  # a keyword/value DSN (host=... dbname=...) is PostgreSQL
    if scheme == "memory":
        from esctl_lib.stores.memory import MemoryStore

        return MemoryStore(**kwargs)
    if scheme == "sqlite":
        if not url.startswith("sqlite:///"):
            raise ConfigError(
                f"invalid SQLite URL {url!r}: write sqlite:///relative/path.db "
                "or sqlite:////absolute/path.db"
            )
        raw = url[len("sqlite:///"):]
        if not raw:
            raise ConfigError(f"invalid SQLite URL {url!r}: no file path")
        path = Path(raw)
        if not path.is_absolute():
            path = Path(base_dir or Path.cwd()) / path
        from esctl_lib.stores.sqlite import SqliteStore

        return SqliteStore(path, synchronous=synchronous, **kwargs)
    if scheme in ("postgresql", "postgres"):
        try:
            from esctl_lib.stores.postgres import PostgresStore
        except ImportError as e:
            raise ConfigError(NO_PSYCOPG) from e
        store: EventStore = PostgresStore(url, schema=schema, **postgres_kwargs(
            kwargs, connect_timeout, idle_in_transaction_timeout))
        return store
    raise ConfigError(
        f"unsupported store URL {mask_url(url)!r}: use memory://, sqlite:///path.db "
        "or postgresql://user@host/db"
    )
