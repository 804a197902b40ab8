"""The todo example as a FastAPI service, on esctl's asyncio API.

Run it (from the repository root, with ``pip install -e '.[fastapi]'``)::

    ESCTL_STORE__URL=sqlite:///todos.db uvicorn --app-dir examples/fastapi_todo \\
        todo_api:app --reload

- ``POST /todos`` adds a todo and answers with its id and the event's ``position``. With an
  ``Idempotency-Key`` header the request is an idempotent command: the todo id and the
  event uuids derive from the key, so a client that timed out and sends the same request
  again appends nothing and gets the first answer back (``Idempotent-Replay: true``).
- ``POST /todos/{todo_id}/complete`` completes one (idempotent the same way).
- ``GET /todos?after=POSITION`` lists outstanding todos. ``after`` is read-your-writes: the
  answer waits (``AsyncEventStore.wait_for``) until the ``outstanding_todos`` projector
  has processed that position, so a client sees its own todo (504 if it takes too long).

The domain (``Todo``, the commands, the ``OutstandingTodos`` projector) is the todo
example's (``examples/todo/todo_app``), unchanged. The projector runs in a thread of this
process, on the blocking store (``store.sync``), so the example needs nothing else; a
deployment runs it with ``esctl run`` instead (``run_projector=False``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Query, Response
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "todo"))

from todo_app.aggregates import Todo
from todo_app.commands import AddTodo, CompleteTodo
from todo_app.errors import CommandRejected, InvalidCommand, TodoNotFound
from todo_app.projections import OutstandingTodos, outstanding_todos

from esctl_lib import (
    AsyncEventStore,
    AsyncRepository,
    ConcurrencyError,
    Event,
    open_async_store,
    run_processor,
)

#: Todo ids derived from idempotency keys live in this namespace.
TODO_ID_NAMESPACE = uuid.UUID("0d6c3a61-6d43-5c2e-8f0e-7f0d0a1e5e11")
#: How long ``GET /todos?after=`` waits for the projector.
READ_YOUR_WRITES_TIMEOUT = 5.0


class NewTodo(BaseModel):
    title: str
    description: str | None = None
    due_date: dt.date | None = None
    stakeholder_email: str | None = None


class Completion(BaseModel):
    completed_on: dt.date


class Written(BaseModel):
    todo_id: str
    position: int


class TodoOut(BaseModel):
    todo_id: str
    title: str
    description: str | None = None
    due_date: dt.date | None = None


def create_app(url: str, *, schema: str | None = None, run_projector: bool = True) -> FastAPI:
    """The service on the store at ``url``; the lifespan opens (and sets up) the store and,
    with ``run_projector``, runs the outstanding-todos projector in a thread."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_async_store(url, schema=schema) as store:
            await store.setup()
            app.state.store = store
            stop = threading.Event()
            worker = None
            if run_projector:
                worker = threading.Thread(
                    target=run_processor, args=(OutstandingTodos(), store.sync),
                    kwargs={"stop": stop, "idle_timeout": 0.2}, daemon=True)
                worker.start()
            try:
                yield
            finally:
                stop.set()
                if worker is not None:
                    await asyncio.to_thread(worker.join, 10)

    app = FastAPI(title="esctl todo", lifespan=lifespan)

    def store_of() -> AsyncEventStore:
        store: AsyncEventStore = app.state.store
        return store

    @app.post("/todos", status_code=201, response_model=Written)
    async def add_todo(
        todo: NewTodo, response: Response,
        idempotency_key: str | None = Header(default=None),
    ) -> Written:
        todo_id = (str(uuid.uuid5(TODO_ID_NAMESPACE, idempotency_key)) if idempotency_key
                   else str(uuid.uuid4()))
        try:
            command = AddTodo(todo_id=todo_id, **todo.model_dump())
        except InvalidCommand as e:
            raise HTTPException(422, str(e)) from e
        stored = await run_command(store_of(), todo_id, command, idempotency_key, response)
        return Written(todo_id=todo_id, position=stored[-1].id or 0)

    @app.post("/todos/{todo_id}/complete", response_model=Written)
    async def complete_todo(
        todo_id: str, completion: Completion, response: Response,
        idempotency_key: str | None = Header(default=None),
    ) -> Written:
        try:
            command = CompleteTodo(todo_id=todo_id, completed_on=completion.completed_on)
        except InvalidCommand as e:
            raise HTTPException(422, str(e)) from e
        stored = await run_command(store_of(), command.todo_id, command, idempotency_key,
                                   response)
        return Written(todo_id=command.todo_id, position=stored[-1].id or 0)

    @app.get("/todos", response_model=list[TodoOut])
    async def list_outstanding(after: int | None = Query(default=None, ge=0)) -> list[TodoOut]:
        store = store_of()
        if after and not await store.wait_for(after, READ_YOUR_WRITES_TIMEOUT,
                                              processor=OutstandingTodos.name):
            raise HTTPException(504, f"the todo list has not caught up with position {after}")
        # Projection queries are blocking SQL through the sync store: off the loop.
        todos = await asyncio.to_thread(outstanding_todos, store.sync)
        return [TodoOut(todo_id=t.todo_id, title=t.title, description=t.description,
                        due_date=t.due_date) for t in todos]

    return app


async def run_command(
    store: AsyncEventStore, todo_id: str, command: Any, key: str | None, response: Response
) -> list[Event]:
    """Load the todo, run the command, save it; with ``key``, as an idempotent command."""
    repository = AsyncRepository(store)
    if key is not None:
        first = await repository.command_result(key, todo_id)
        if first is not None:  # a retry of a command that landed: its first answer
            response.headers["Idempotent-Replay"] = "true"
            return first
    for _attempt in range(3):
        todo = await repository.load(Todo, todo_id)
        try:
            command.execute(todo)
        except TodoNotFound as e:
            raise HTTPException(404, str(e)) from e
        except CommandRejected as e:
            # A retry racing the first attempt: it may have landed since the look-up.
            first = None if key is None else await repository.command_result(key, todo_id)
            if first is None:
                raise HTTPException(409, str(e)) from e
            response.headers["Idempotent-Replay"] = "true"
            return first
        try:
            return await repository.save(todo, command_id=key)
        except ConcurrencyError:
            continue  # another writer changed the todo: run the command again on it
    raise HTTPException(409, f"todo {todo_id} keeps changing; try again")


def _app_from_environment() -> FastAPI:
    return create_app(os.environ.get("ESCTL_STORE__URL", "sqlite:///todos.db"),
                      schema=os.environ.get("ESCTL_STORE__SCHEMA"))


def __getattr__(name: str) -> Any:  # ``uvicorn todo_api:app`` builds the app on demand
    if name == "app":
        return _app_from_environment()
    raise AttributeError(name)
