"""The PostgreSQL backend (psycopg 3), imported only when a ``postgresql://`` URL is opened.

Modules: ``store`` (the store; its docstring explains ordering, push and connections),
``append`` (appends), ``tx`` (transactions), ``reads`` (reads in stream order), ``stream``
(stream-order SQL), ``decode`` (rows to events), ``pool`` (connections), ``pipeline``
(executemany as one libpq pipeline), ``listen`` (LISTEN/NOTIFY threads), ``lock``
(processor locks), ``own_writes`` (read your own writes), ``errors`` (every psycopg → esctl
error translation).
"""

from esctl_lib.stores.base import ReaderHorizon
from esctl_lib.stores.postgres.lock import PostgresAdvisoryLock, advisory_key
from esctl_lib.stores.postgres.store import PostgresStore, channel_name
from esctl_lib.stores.postgres.tx import PostgresTransaction

__all__ = [
    "PostgresAdvisoryLock",
    "PostgresStore",
    "PostgresTransaction",
    "ReaderHorizon",
    "advisory_key",
    "channel_name",
]
