"""The todo app's events: facts, named by explicit, stable type names.

Bodies hold plain JSON values; dates are ISO 8601 strings (``"2024-05-01"``).
"""

from __future__ import annotations

from esctl_lib import Event


class TodoAdded(Event, type_name="todo_added"):
    """A todo was added. Body: ``title``, ``description``, ``due_date``, ``stakeholder_email``."""


class TodoAmended(Event, type_name="todo_amended"):
    """Some of a todo's details changed. Body: only the fields that changed."""


class TodoCompleted(Event, type_name="todo_completed"):
    """A todo was done. Body: ``completed_on``."""


class TodoAbandoned(Event, type_name="todo_abandoned"):
    """A todo was given up. Body: ``abandoned_on``."""


class StakeholderNotifiedOfTodoCompletion(
    Event, type_name="stakeholder_notified_of_todo_completion"
):
    """The stakeholder was told a todo was completed. Body: ``notified_on``, ``email``."""
