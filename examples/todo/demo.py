"""The todo example end to end, on SQLite, from the repository root:

    python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/python examples/todo/demo.py

It sets up the store (``esctl setup``), changes some todos through the command handler,
runs every processor up to the head (``esctl run --once``), shows ``esctl status``, and
prints the outstanding todos and the emails the reactor "sent". Each run adds new todos,
so it can run again and again. The store is the one ``eventsourcery.toml`` names (or
``ESCTL_STORE__URL``); emails go to ``.esctl/outbox.jsonl`` (or ``TODO_APP_OUTBOX``).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from todo_app.cli import format_todos, open_configured  # noqa: E402
from todo_app.commands import (  # noqa: E402
    AbandonTodo,
    AddTodo,
    AmendTodo,
    CommandHandler,
    CompleteTodo,
)
from todo_app.notifier import OUTBOX_ENV, OutboxNotifier  # noqa: E402
from todo_app.projections import outstanding_todos  # noqa: E402

from esctl_lib import EventStore, Repository  # noqa: E402

CONFIG = Path(os.environ.get("ESCTL_CONFIG") or HERE.parents[1] / "eventsourcery.toml")


def esctl(*args: str) -> None:
    """Run the installed ``esctl`` the way a person would; stop the demo if it fails."""
    print(f"\n$ esctl {' '.join(args)}", flush=True)
    result = subprocess.run([esctl_program(), "--config", str(CONFIG), *args], check=False)
    if result.returncode != 0:
        sys.exit(f"demo: `esctl {' '.join(args)}` failed with exit code {result.returncode}")


def esctl_program() -> str:
    """The ``esctl`` console script installed next to this Python."""
    folder = Path(sys.executable).parent
    for name in ("esctl", "esctl.exe"):
        if (folder / name).exists():
            return str(folder / name)
    sys.exit(f"demo: no esctl in {folder}; install the project first: pip install -e .")


def change_todos(store: EventStore) -> None:
    """Add four todos, amend one, complete one and abandon one, through the handler."""
    handler = CommandHandler(Repository(store))
    today = dt.date.today()
    milk, taxes, gutters, dog = (str(uuid.uuid4()) for _ in range(4))
    handler.handle(AddTodo(todo_id=milk, title="Buy milk", due_date=today,
                           stakeholder_email="partner@example.com"))
    handler.handle(AddTodo(todo_id=taxes, title="File taxes", description="before June"))
    handler.handle(AmendTodo(todo_id=taxes, due_date=today + dt.timedelta(days=30)))
    handler.handle(AddTodo(todo_id=gutters, title="Clean the gutters"))
    handler.handle(AddTodo(todo_id=dog, title="Walk the dog"))
    handler.handle(CompleteTodo(todo_id=milk, completed_on=today))
    handler.handle(AbandonTodo(todo_id=dog, abandoned_on=today))
    print("\nadded 4 todos, amended 1, completed 1 (it has a stakeholder), abandoned 1")


def main() -> None:
    outbox = OutboxNotifier(os.environ.setdefault(OUTBOX_ENV, str(CONFIG.parent / ".esctl"
                                                                  / "outbox.jsonl")))
    sent_before = len(outbox.sent())
    esctl("setup")
    with open_configured(CONFIG) as store:
        change_todos(store)
        waiting = len(outstanding_todos(store))
        print(f"outstanding todos before the processors run: {waiting} "
              "(projections are eventually consistent)")
        esctl("run", "--once")
        esctl("status")
        todos = outstanding_todos(store)
    print(f"\nOutstanding todos ({len(todos)}):\n{format_todos(todos)}")
    emails = outbox.sent()[sent_before:]
    print(f"\nEmails sent by the todo_completed_notifier reactor ({outbox.path}):")
    for email in emails:
        print(f"  to {email.to}: {email.subject}")


if __name__ == "__main__":
    main()
