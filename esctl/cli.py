"""The ``esctl`` Typer app: global options, and every command registered on it.

Importing this module is cheap: no database driver, no application code, no settings
library (they load when a command runs), and no command's module: each is imported and
built when it runs (:data:`COMMANDS`, :class:`~esctl.parser.EsctlGroup`), so ``esctl
--help`` starts fast. The entry point is :func:`esctl.main.run`, which answers a plain
``esctl status`` without Typer (:mod:`esctl.status`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from esctl import __version__
from esctl.context import new_session
from esctl.exit_codes import MEANINGS
from esctl.parser import EsctlGroup

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

#: Every command: its name -> the function that implements it, in ``esctl --help``'s order.
COMMANDS: dict[str, str] = {
    "init": "esctl.commands.project:init",
    "config": "esctl.commands.project:config",
    "setup": "esctl.commands.project:setup",
    "run": "esctl.commands.processing:run",
    "status": "esctl.commands.processing:status",
    "tail": "esctl.commands.stream:tail",
    "events": "esctl.commands.stream:events",
    "append": "esctl.commands.stream:append",
    "export": "esctl.commands.transfer:export",
    "import": "esctl.commands.transfer:import_",
    "replay": "esctl.commands.processing:replay",
    "reset": "esctl.commands.processing:reset",
    "errors": "esctl.commands.processing:errors",
    "retry": "esctl.commands.processing:retry",
    "skip": "esctl.commands.processing:skip",
    "types": "esctl.commands.types:types",
    "trace": "esctl.commands.trace:trace",
    "snapshots": "esctl.commands.snapshots:snapshots",
}


class _Esctl(EsctlGroup):
    lazy_commands = COMMANDS


app = typer.Typer(
    name="esctl",
    cls=_Esctl,
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
    session = new_session(config, store_url, schema, log_level)
    ctx.obj = session
    ctx.call_on_close(session.close)
