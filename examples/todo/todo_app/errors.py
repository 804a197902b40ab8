"""The todo app's own errors: invalid input, rejected commands, lost races."""

from __future__ import annotations


class TodoError(Exception):
    """Root of the todo app's errors."""


class InvalidCommand(TodoError):
    """A command's input is missing or malformed (HTTP would say 400)."""


class CommandRejected(TodoError):
    """The todo's current state forbids the command (HTTP would say 422)."""

    def __init__(self, todo_id: str, reason: str) -> None:
        super().__init__(f"todo {todo_id} {reason}")
        self.todo_id = todo_id


class TodoNotFound(CommandRejected):
    """No todo has this id."""

    def __init__(self, todo_id: str) -> None:
        super().__init__(todo_id, "does not exist")


class TodoAlreadyAdded(CommandRejected):
    """A todo with this id was already added."""

    def __init__(self, todo_id: str) -> None:
        super().__init__(todo_id, "already exists")


class TodoAlreadyCompleted(CommandRejected):
    """The todo is completed; it cannot change any more."""

    def __init__(self, todo_id: str) -> None:
        super().__init__(todo_id, "is already completed")


class TodoAlreadyAbandoned(CommandRejected):
    """The todo is abandoned; it cannot change any more."""

    def __init__(self, todo_id: str) -> None:
        super().__init__(todo_id, "is already abandoned")


class CommandConflict(TodoError):
    """Other writers kept changing the todo; the command gave up after ``attempts`` tries."""

    def __init__(self, todo_id: str, attempts: int) -> None:
        super().__init__(
            f"todo {todo_id} kept changing under us; gave up after {attempts} attempts"
        )
        self.todo_id = todo_id
        self.attempts = attempts
