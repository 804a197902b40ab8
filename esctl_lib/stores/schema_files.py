"""The versioned schema files shipped with each backend (``schema/<backend>/NNN_name.sql``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from esctl_lib.errors import SchemaError

_NAME_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class SchemaFile:
    """One migration: its version number, short name and SQL text."""

    version: int
    name: str
    sql: str


def schema_files(backend: str) -> list[SchemaFile]:
    """Every schema file of ``backend`` ("sqlite" or "postgresql"), in version order."""
    folder = resources.files("esctl_lib.stores").joinpath("schema", backend)
    files = []
    for entry in folder.iterdir():
        match = _NAME_RE.match(entry.name)
        if match:
            files.append(SchemaFile(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    files.sort(key=lambda f: f.version)
    return files


def latest_version(backend: str) -> int:
    """The newest schema version this code knows for ``backend``."""
    files = schema_files(backend)
    return files[-1].version if files else 0


def check_not_newer(backend: str, version: int) -> None:
    """Raise :class:`SchemaError` when a database's schema is newer than this code knows."""
    known = latest_version(backend)
    if version > known:
        raise SchemaError(
            f"the store's schema is version {version}, newer than this esctl knows "
            f"({known}); upgrade esctl"
        )
