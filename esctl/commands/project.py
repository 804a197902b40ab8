"""``esctl init``, ``esctl config`` and ``esctl setup``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from esctl import render
from esctl.context import handle_errors, session

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@handle_errors
def init(
    folder: Annotated[Path, typer.Argument(
        metavar="FOLDER", help="Folder to write eventsourcery.toml into.",
        show_default="current folder")] = Path("."),
    url: Annotated[str, typer.Option("--url", metavar="URL", help="The store URL to write.")]
    = "sqlite:///.esctl/events.db",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")]
    = False,
) -> None:
    """Write a commented eventsourcery.toml for a new project.

    \b
    Example:
      esctl init --url sqlite:///.esctl/shop.db
    """
    from esctl_lib import init_config

    path = init_config(folder, store_url=url, force=force)
    render.note(f"wrote {path}")


@handle_errors
def config(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the effective settings and where each came from.

    Sources: flag, env (ESCTL_...), file, default. The store URL's password is masked.

    \b
    Example:
      ESCTL_STORE__URL=sqlite:///x.db esctl config
    """
    settings = session(ctx).settings
    if as_json:
        render.json_out({
            "config_file": str(settings.config_file) if settings.config_file else None,
            "settings": {key: {"value": value, "from": source}
                         for key, value, source in render.settings_rows(settings)},
        })
    else:
        render.settings_table(settings)


@handle_errors
def setup(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Create or upgrade the store schema and projector tables.

    Creates the events, trackers, state and parked-events tables, then every
    configured projector's tables. Idempotent: running it again changes nothing. Prints what it did.

    \b
    Example:
      esctl setup
    """
    from esctl_lib import setup_all

    s = session(ctx)
    done = setup_all(s.store(), s.app.processors.values())
    if as_json:
        render.json_out({"done": done})
    else:
        for step in done:
            render.line(step)
