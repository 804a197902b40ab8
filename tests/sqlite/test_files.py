"""SQLite files: folders that cannot be made, files that do not exist, schemas from the future."""

from __future__ import annotations

from pathlib import Path

import pytest

from esctl_lib import SchemaError, StoreUnavailableError, open_store


def test_a_sqlite_path_that_cannot_be_created_is_a_clear_error() -> None:
    store = open_store("sqlite:////proc/esctl-nope/x.db")
    with pytest.raises(StoreUnavailableError, match="cannot create the folder"):
        store.setup()


def test_reading_a_sqlite_store_that_does_not_exist_creates_no_file(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'absent' / 'x.db'}")
    assert store.schema_version() == 0
    with pytest.raises(SchemaError, match="esctl setup"):
        store.latest_position()
    assert not (tmp_path / "absent").exists()


def test_a_sqlite_schema_newer_than_the_code_is_a_clear_error(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    store.setup()
    with store.transaction() as tx:
        tx.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (999, 'future', 0)")
    with pytest.raises(SchemaError, match="newer than this esctl knows"):
        store.setup()
