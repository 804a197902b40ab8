"""The async memory store (``memory://``): the sync :class:`MemoryStore` behind one thread.

The memory store holds its lock for a whole transaction, which a processor on another
thread may keep open, so even its calls go to the worker thread rather than run on the
loop (``stores/threaded_aio.py``).
"""

from __future__ import annotations

from esctl_lib.stores.threaded_aio import ThreadedAsyncStore


class AsyncMemoryStore(ThreadedAsyncStore):
    """``open_async_store("memory://")``: a :class:`MemoryStore` behind one thread."""
