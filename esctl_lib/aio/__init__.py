"""The asyncio API: :func:`open_async_store`, :class:`AsyncEventStore`, :class:`AsyncRepository`.

::

    async with open_async_store("postgresql://app@db/app") as store:
        repository = AsyncRepository(store)
        todo = await repository.load(Todo, todo_id)
        todo.add(title="Buy milk")
        stored = await repository.save(todo, command_id=idempotency_key)
        await store.wait_for(stored[-1].id, 2.0, processor="outstanding_todos")

The store is in :mod:`esctl_lib.stores.aio` (its docstring says how each backend avoids
blocking the loop); the repository is here.
"""

from esctl_lib.aio.repository import AsyncRepository
from esctl_lib.stores.aio import AsyncEventStore, open_async_store

__all__ = ["AsyncEventStore", "AsyncRepository", "open_async_store"]
