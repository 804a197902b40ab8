"""The async PostgreSQL store applies ``idle_in_transaction_timeout`` to its sessions, as the
sync store does: a transaction opened on :meth:`connection` and left idle is ended by the
server instead of holding locks (and readers' horizon) for ever."""

from __future__ import annotations

import asyncio

from esctl_lib import open_async_store
from tests.backends import POSTGRES_DSN
from tests.postgres.conftest import PgSpec


async def _setting(schema: str, **kwargs: float) -> tuple[str, str]:
    async with open_async_store(POSTGRES_DSN, schema=schema, **kwargs) as store:
        async with store.connection() as conn:  # type: ignore[attr-defined]
            cur = await conn.execute("SHOW idle_in_transaction_session_timeout")
            pooled = (await cur.fetchone())[0]
        sync = store.sync  # type: ignore[attr-defined]
        with sync.connection() as conn:
            own = conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()[0]
    return pooled, own


def test_the_async_store_sets_the_timeout_on_its_sessions(pg: PgSpec) -> None:
    assert asyncio.run(_setting(pg.schema, idle_in_transaction_timeout=2.5)) == (
        "2500ms", "2500ms")


def test_the_default_matches_the_sync_store(pg: PgSpec) -> None:
    assert asyncio.run(_setting(pg.schema)) == ("1min", "1min")
