"""``[store] idle_in_transaction_timeout`` reaches the PostgreSQL store's connections."""

from __future__ import annotations

from pathlib import Path

import pytest

from esctl_lib import ConfigError
from esctl_lib.app import open_configured_store
from esctl_lib.config import load_settings
from esctl_lib.stores.postgres import PostgresStore
from tests.postgres.conftest import PgSpec


def test_the_setting_reaches_the_sessions(pg: PgSpec, tmp_path: Path) -> None:
    settings = load_settings(cwd=tmp_path, overrides={"store": {
        "url": pg.url, "schema": pg.schema, "idle_in_transaction_timeout": 2.5}})
    store = open_configured_store(settings)
    try:
        assert isinstance(store, PostgresStore)
        with store.connection() as conn:
            row = conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()
        assert row == ("2500ms",)
    finally:
        store.close()


def test_a_negative_timeout_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="idle_in_transaction_timeout"):
        load_settings(cwd=tmp_path, overrides={"store": {
            "url": "postgresql://x@127.0.0.1/db", "idle_in_transaction_timeout": -1}})
