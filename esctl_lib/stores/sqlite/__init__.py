"""The SQLite backend: ``store`` (the store and its reads), ``tx`` (transactions and
appends), ``lock`` (processor locks as file locks), ``errors`` (sqlite3 → esctl errors)."""

from esctl_lib.stores.options import SYNCHRONOUS_MODES
from esctl_lib.stores.sqlite.errors import translate_errors
from esctl_lib.stores.sqlite.lock import FileLock, lock_file_path
from esctl_lib.stores.sqlite.store import SqliteStore, split_sql
from esctl_lib.stores.sqlite.tx import SqliteTransaction

__all__ = [
    "SYNCHRONOUS_MODES",
    "FileLock",
    "SqliteStore",
    "SqliteTransaction",
    "lock_file_path",
    "split_sql",
    "translate_errors",
]
