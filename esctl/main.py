"""The ``esctl`` entry point: global options, and every command registered on one Typer app.

Importing this module is cheap: no database driver, no application code, no settings
library (they load when a command runs), so ``esctl --help`` starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from esctl import __version__
from esctl.commands import processing, project, snapshots, stream, trace, transfer, types
from esctl.context import Session
from esctl.exit_codes import INTERRUPTED, MEANINGS
from esctl.parser import EsctlCommand, EsctlGroup

HELP = """Operate an esctl event store and its processors.

Settings come from eventsourcery.toml (found in this folder or a parent), overridden by
ESCTL_* environment variables (ESCTL_STORE__URL for [store] url) and by the options below,
which may also follow the command (esctl tail --config other.toml). NO_COLOR=1 turns
colours off.

\b
Exit codes:
""" + "".join(f"  {code:<3}  {text}\n" for code, text in MEANINGS.items()) + """
\b
Example:
  esctl init && esctl setup && esctl tail --follow
"""

app = typer.Typer(
    name="esctl",
    cls=EsctlGroup,
    help=HELP,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,  # plain help: Rich would double the start-up time
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"esctl {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", metavar="PATH",
        help="The config file (default: ESCTL_CONFIG, else eventsourcery.toml here or in a "
             "parent folder).")] = None,
    store_url: Annotated[str | None, typer.Option(
        "--store-url", metavar="URL", help="Override [store] url.")] = None,
    schema: Annotated[str | None, typer.Option(
        "--schema", metavar="NAME", help="Override [store] schema (PostgreSQL).")] = None,
    log_level: Annotated[str | None, typer.Option(
        "--log-level", metavar="LEVEL", help="Override [logging] level.")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """Operate an esctl event store and its processors."""
    session = Session(
        config_path=config,
        overrides={"store": {"url": store_url, "schema": schema},
                   "logging": {"level": log_level}},
    )
    ctx.obj = session
    ctx.call_on_close(session.close)


app.command("init", cls=EsctlCommand)(project.init)
app.command("config", cls=EsctlCommand)(project.config)
app.command("setup", cls=EsctlCommand)(project.setup)
app.command("run", cls=EsctlCommand)(processing.run)
app.command("status", cls=EsctlCommand)(processing.status)
app.command("tail", cls=EsctlCommand)(stream.tail)
app.command("events", cls=EsctlCommand)(stream.events)
app.command("append", cls=EsctlCommand)(stream.append)
app.command("export", cls=EsctlCommand)(transfer.export)
app.command("import", cls=EsctlCommand)(transfer.import_)
app.command("replay", cls=EsctlCommand)(processing.replay)
app.command("reset", cls=EsctlCommand)(processing.reset)
app.command("errors", cls=EsctlCommand)(processing.errors)
app.command("retry", cls=EsctlCommand)(processing.retry)
app.command("skip", cls=EsctlCommand)(processing.skip)
app.command("types", cls=EsctlCommand)(types.types)
app.command("trace", cls=EsctlCommand)(trace.trace)
app.command("snapshots", cls=EsctlCommand)(snapshots.snapshots)


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # between parsing and the commands' own handling
        raise SystemExit(INTERRUPTED) from None
