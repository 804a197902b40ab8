"""uuids in the SQLite events table: 16-byte BLOBs since schema 3, text before.

A store at schema 1 (not yet upgraded by ``esctl setup``) keeps text; reads accept both
forms and always return canonical lower-case strings, and an append writes the form of
the table it writes to (:func:`compact`, checked inside its ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

#: The first schema version that stores uuids as BLOBs (``003_lean_events.sql``).
COMPACT_SINCE = 3
_fromhex = bytearray.fromhex


def to_blob(text: str) -> bytearray:
    """A canonical uuid string as its 16 bytes, to bind as a parameter.

    A ``bytearray``, not ``bytes``: the sqlite3 module binds an exact ``bytearray`` (like
    int, float and str) straight away, and looks for an adapter for anything else, ``bytes``
    included, about 0.8 µs per parameter on this machine class against 0.1 µs (two such
    parameters an event, three in a one-statement append). SQLite stores both as a BLOB."""
    return _fromhex(text.replace("-", ""))


def to_text(value: Any) -> Any:
    """A stored uuid (BLOB or text; None stays None) as a canonical string."""
    if value.__class__ is bytes:
        h = value.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return value


def migrate_value(value: Any) -> Any:
    """``esctl_uuid_blob()`` for the schema 3 upgrade: a stored text uuid as 16 bytes
    (any form ``uuid.UUID`` reads; NULL stays NULL, a BLOB stays as it is)."""
    if value is None or value.__class__ is bytes:
        return value
    return uuid.UUID(str(value)).bytes


def register(conn: sqlite3.Connection) -> None:
    """Make ``esctl_uuid_blob()`` available to the schema files on ``conn``."""
    conn.create_function("esctl_uuid_blob", 1, migrate_value, deterministic=True)


class Connection(sqlite3.Connection):
    """The store's connections: they remember which uuid form their events table has."""

    #: (schema cookie, compact?) as last seen; the cookie (``PRAGMA schema_version``)
    #: changes with every schema change, so an upgrade under a running process is noticed.
    esctl_format: tuple[int, bool] | None = None


def compact(conn: sqlite3.Connection) -> bool:
    """True when the events table on ``conn`` stores uuids as BLOBs (schema >= 3)."""
    cookie = conn.execute("PRAGMA schema_version").fetchone()[0]
    known = getattr(conn, "esctl_format", None)
    if known is not None and known[0] == cookie:
        return bool(known[1])
    row = conn.execute(
        "SELECT type FROM pragma_table_info('events') WHERE name = 'uuid'").fetchone()
    result = bool(row) and str(row[0]).upper() == "BLOB"
    if isinstance(conn, Connection):
        conn.esctl_format = (cookie, result)
    return result
