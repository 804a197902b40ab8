"""``esctl types``: the event types the application registers, and their bodies."""

from __future__ import annotations

from typing import Annotated

import typer

from esctl import render
from esctl.context import handle_errors, session


@handle_errors
def types(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option(
        "--json", help="JSON, with each body as a JSON Schema.")] = False,
) -> None:
    """List the registered event types.

    For each type registered by the modules in [app] events: its class, its
    aliases (old names it still reads), its upcasters, and for a typed body the
    fields with their types (a missing required field is refused by esctl
    append and esctl import, exit 2).

    \b
    Example:
      esctl types --json
    """
    from esctl_lib import event_types

    report = event_types(session(ctx).registry)
    if as_json:
        render.json_out(report.to_dict())
    else:
        render.types_list(report)
