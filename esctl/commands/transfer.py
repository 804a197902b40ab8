"""``esctl export`` and ``esctl import``: a stream as JSON lines with every field, and back."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from esctl import render
from esctl.context import handle_errors, session
from esctl.exit_codes import FAILURE
from esctl.parser import at_least


@handle_errors
def export(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="FILE|-", help="Where to write; - for "
                                                                    "stdout.")] = "-",
    types: Annotated[list[str] | None, typer.Option(
        "--type", "-t", metavar="TYPE", help="Only events of this type (repeat for several).")] = None,
    after: Annotated[int, typer.Option(
        "--from", metavar="ID", help="Start after this position (event id).", callback=at_least(0))] = 0,
) -> None:
    """Export the stream (or a slice) as JSON lines.

    Every field of every event; a FILE is written atomically.

    \b
    Example:
      esctl export backup.jsonl
    """
    from esctl_lib import export_events

    store = session(ctx).store(as_stored=True)
    out = sys.stdout if target == "-" else Path(target)
    with render.progress("export") as progress:
        count = export_events(store, out, types=types, after=after, progress=progress)
    if target != "-":
        render.note(f"exported {count} events to {target}")


@handle_errors
def import_(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="FILE|-", help="An export; - for "
                                                                    "stdin.")] = "-",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for "
                                                          "confirmation.")] = False,
    allow_unknown_type: Annotated[bool, typer.Option(
        "--allow-unknown-type", help="Import types no configured event module "
                                     "registers.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", metavar="N", help="Events per transaction.",
                                            callback=at_least(1))] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
    = False,
) -> None:
    """Import an export into the store.

    Appends in order, keeping uuids, bodies, created_at, correlation and
    causation ids and metadata. Checks the whole input first (bad input writes
    nothing); events already stored are skipped, so an interrupted import can
    be run again.

    \b
    Example:
      ESCTL_STORE__URL=postgresql://app@db/prod esctl import backup.jsonl --yes
    """
    from esctl_lib import import_events

    s = session(ctx)
    registry = None if allow_unknown_type else s.registry
    store = s.store()
    if not render.confirm(f"Import {source} into {store.display_url}?", yes=yes):
        raise typer.Exit(FAILURE)
    src = sys.stdin if source == "-" else Path(source)
    with render.progress("import") as progress:
        result = import_events(store, src, registry=registry, batch_size=batch_size,
                               progress=progress)
    if as_json:
        render.json_out({"imported": result.imported, "skipped": result.skipped})
    else:
        render.note(f"imported {result.imported} events ({result.skipped} already stored, "
                    "skipped)")
