"""The async SQLite store: the sync :class:`SqliteStore` on a worker thread of its own.

Why a thread and not an async driver: sqlite3 is the only driver in the standard library,
its calls block (file locks, fsync), and a SQLite file takes one writer at a time, so a
dedicated thread per store loses no concurrency and never blocks the event loop
(``stores/threaded_aio.py`` says how waiting stays off that thread).
"""

from __future__ import annotations

from esctl_lib.stores.threaded_aio import ThreadedAsyncStore


class AsyncSqliteStore(ThreadedAsyncStore):
    """``open_async_store("sqlite:///path.db")``: a :class:`SqliteStore` behind one thread."""
