"""Opening an async store from a store URL (the contract is in ``stores/aio_base.py``,
whose docstring says how each backend keeps the event loop free)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from esctl_lib.stores.aio_base import AsyncEventStore

__all__ = ["AsyncEventStore", "open_async_store"]


def open_async_store(
    url: str,
    *,
    base_dir: str | Path | None = None,
    schema: str | None = None,
    synchronous: str = "FULL",
    connect_timeout: float | None = None,
    idle_in_transaction_timeout: float | None = None,
    **kwargs: Any,
) -> AsyncEventStore:
    """The async store a URL names, with the arguments of
    :func:`~esctl_lib.stores.open_store`: ``async with open_async_store(url) as store``.

    Nothing connects until first use. PostgreSQL takes ``pool_size``, ``poll_interval``,
    ``own_writes_wait``, ``notify``, ``notify_in_commit`` and ``application_name`` as the
    sync store does.
    """
    from esctl_lib.stores import NO_PSYCOPG, open_store, postgres_kwargs
    from esctl_lib.stores.dsn import classify

    scheme = classify(url) or ""
    if scheme in ("postgresql", "postgres"):
        try:
            from esctl_lib.stores.postgres.aio import AsyncPostgresStore
        except ImportError as e:
            from esctl_lib.errors import ConfigError

            raise ConfigError(NO_PSYCOPG) from e
        return AsyncPostgresStore(url, schema=schema, **postgres_kwargs(
            kwargs, connect_timeout, idle_in_transaction_timeout))
    sync = open_store(url, base_dir=base_dir, schema=schema, synchronous=synchronous,
                      connect_timeout=connect_timeout, **kwargs)
    if sync.backend == "memory":
        from esctl_lib.stores.memory_aio import AsyncMemoryStore

        return AsyncMemoryStore(sync)
    from esctl_lib.stores.sqlite.aio import AsyncSqliteStore

    return AsyncSqliteStore(sync)
