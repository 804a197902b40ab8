"""A small command-line front for the todo app: ``python examples/todo/todo.py --help``.

It finds the store the way ``esctl`` does (``eventsourcery.toml`` here or in a parent,
``--config``, ``ESCTL_STORE__URL``). Writes go through the command handler and show up in
the lists once the processors have run (``esctl run``): the lists are eventually consistent.

Exit codes: 0 done; 1 refused by the todo's rules or the store failed; 2 invalid input;
3 configuration error; 4 gave up after concurrent changes.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from esctl_lib import (
    ConfigError,
    EsctlError,
    EventStore,
    Repository,
    load_events,
    load_settings,
    open_configured_store,
)
from todo_app.commands import AbandonTodo, AddTodo, AmendTodo, CommandHandler, CompleteTodo
from todo_app.errors import CommandConflict, InvalidCommand, TodoError
from todo_app.projections import TodoView, completed_todos, outstanding_todos, scheduled_todos

QUERIES: dict[str, Callable[[EventStore], list[TodoView]]] = {
    "outstanding": outstanding_todos,
    "completed": completed_todos,
    "scheduled": scheduled_todos,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line; returns the exit code."""
    args = parser().parse_args(argv)
    try:
        store = open_configured(args.config)
        try:
            return int(args.run(store, args))
        finally:
            store.close()
    except (TodoError, EsctlError) as e:
        print(f"todo: error: {e}", file=sys.stderr)
        return exit_code_for(e)


def open_configured(config: str | Path | None = None) -> EventStore:
    """Open the store ``eventsourcery.toml`` (or ``config``, or ``ESCTL_*``) names."""
    settings = load_settings(config_path=config)
    load_events(settings)
    return open_configured_store(settings)


def exit_code_for(error: Exception) -> int:
    """The documented exit code for an error."""
    if isinstance(error, InvalidCommand):
        return 2
    if isinstance(error, ConfigError):
        return 3
    if isinstance(error, CommandConflict):
        return 4
    return 1


# -- the commands ------------------------------------------------------------------------------
def add(store: EventStore, args: argparse.Namespace) -> int:
    """Add a todo and print its id."""
    todo_id = args.id or str(uuid.uuid4())
    params = {"todo_id": todo_id, "title": args.title, **_details(args)}
    CommandHandler(Repository(store)).handle(AddTodo.build(params))
    print(todo_id)
    return 0


def amend(store: EventStore, args: argparse.Namespace) -> int:
    """Amend an open todo."""
    params = {"todo_id": args.todo_id, "title": args.title, **_details(args)}
    CommandHandler(Repository(store)).handle(AmendTodo.build(params))
    return 0


def complete(store: EventStore, args: argparse.Namespace) -> int:
    """Complete an open todo."""
    params = {"todo_id": args.todo_id, "completed_on": args.on}
    CommandHandler(Repository(store)).handle(CompleteTodo.build(params))
    return 0


def abandon(store: EventStore, args: argparse.Namespace) -> int:
    """Abandon an open todo."""
    params = {"todo_id": args.todo_id, "abandoned_on": args.on}
    CommandHandler(Repository(store)).handle(AbandonTodo.build(params))
    return 0


def list_todos(store: EventStore, args: argparse.Namespace) -> int:
    """Print one projection's todos, as text or JSON."""
    todos = QUERIES[args.which](store)
    if args.json:
        print(json.dumps([_jsonable(t) for t in todos], indent=2))
    else:
        print(format_todos(todos))
    return 0


def format_todos(todos: Sequence[TodoView]) -> str:
    """Todos as aligned text lines: due date, title, id (and completion date if any)."""
    if not todos:
        return "(none)"
    lines = []
    for todo in todos:
        due = todo.due_date.isoformat() if todo.due_date else "-"
        done = f"  completed {todo.completed_on.isoformat()}" if todo.completed_on else ""
        lines.append(f"{due:<10}  {todo.title:<24}  {todo.todo_id}{done}")
    return "\n".join(lines)


def _details(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "description": args.description,
        "due_date": args.due_date,
        "stakeholder_email": args.stakeholder_email,
    }


def _jsonable(todo: TodoView) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.date) else v
            for k, v in dataclasses.asdict(todo).items()}


# -- the parser --------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand sets ``run``."""
    top = argparse.ArgumentParser(
        prog="todo", description="Drive the esctl todo example.",
        epilog="example: todo add 'Buy milk' --due-date 2030-01-31 && esctl run --once "
               "&& todo list scheduled",
    )
    top.add_argument("--config", metavar="PATH", help="eventsourcery.toml to use")
    sub = top.add_subparsers(required=True, metavar="COMMAND")
    _write_commands(sub)
    cmd = sub.add_parser("list", help="list todos from a projection")
    cmd.add_argument("which", choices=sorted(QUERIES))
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd.set_defaults(run=list_todos)
    return top


def _write_commands(sub: Any) -> None:
    cmd = sub.add_parser("add", help="add a todo; prints its id")
    cmd.add_argument("title")
    cmd.add_argument("--id", help="the todo's UUID (default: a new one)")
    _detail_options(cmd)
    cmd.set_defaults(run=add)

    cmd = sub.add_parser("amend", help="change some details of an open todo")
    cmd.add_argument("todo_id")
    cmd.add_argument("--title")
    _detail_options(cmd)
    cmd.set_defaults(run=amend)

    today = dt.date.today().isoformat()
    for name, func in (("complete", complete), ("abandon", abandon)):
        cmd = sub.add_parser(name, help=f"{name} an open todo")
        cmd.add_argument("todo_id")
        cmd.add_argument("--on", default=today, metavar="DATE", help="default: today")
        cmd.set_defaults(run=func)


def _detail_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--description")
    cmd.add_argument("--due-date", metavar="YYYY-MM-DD")
    cmd.add_argument("--stakeholder-email", metavar="EMAIL")


if __name__ == "__main__":
    sys.exit(main())
