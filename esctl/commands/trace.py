"""``esctl trace``: what an event (or a command's correlation id) caused, as a tree."""

from __future__ import annotations

from typing import Annotated

import typer

from esctl import render
from esctl.context import handle_errors, session
from esctl.parser import at_least


@handle_errors
def trace(
    ctx: typer.Context,
    ident: Annotated[str, typer.Argument(
        metavar="ID", help="An event id (position), an event uuid or a correlation id.")],
    limit: Annotated[int, typer.Option(
        "--limit", metavar="N", help="Show at most N events; the rest are counted.",
        callback=at_least(1))] = 500,
    as_json: Annotated[bool, typer.Option(
        "--json", help="The trees as JSON, every event with its fields.")] = False,
) -> None:
    """Show the tree of events linked by causation.

    From the event that started it (climbing causation ids from an event), each
    event with the events caused by it, on any aggregate: what each reactor
    emitted in response, and so on. A correlation id shows that conversation.
    Past --limit, a line says how many more events there are. An id that matches
    nothing is exit 2.

    \b
    Example:
      esctl trace 42
      esctl trace 9f1c2d3e-0a4b-4c5d-8e6f-7a8b9c0d1e2f --json
    """
    from esctl_lib import trace_events

    result = trace_events(session(ctx).store(as_stored=True), ident, limit=limit)
    if as_json:
        render.json_out(result.to_dict())
    else:
        render.trace_tree(result)
