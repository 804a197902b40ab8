"""The command reference in README.md, generated from ``--help`` (with cog) so it cannot drift.

``cog -r README.md`` rewrites the generated parts; CI runs ``cog --check README.md``. The
help is rendered at a fixed width with no colour, whatever the terminal, so the output is
the same on every machine.
"""

from __future__ import annotations

from typing import Any

import typer

from esctl.exit_codes import MEANINGS

WIDTH = 88


def _root() -> tuple[Any, Any]:
    from esctl.cli import app

    group = typer.main.get_command(app)
    ctx = group.make_context("esctl", [], resilient_parsing=True, terminal_width=WIDTH,
                             max_content_width=WIDTH)
    return group, ctx


def command_names() -> list[str]:
    """The registered commands, in the order ``esctl --help`` lists them."""
    group, ctx = _root()
    return list(group.list_commands(ctx))


def help_text(name: str | None = None) -> str:
    """``esctl [NAME] --help`` as printed at a fixed width, without colour."""
    group, ctx = _root()
    if name is None:
        return str(group.get_help(ctx))
    command = group.get_command(ctx, name)
    sub = command.make_context(name, [], parent=ctx, resilient_parsing=True)
    return str(command.get_help(sub))


def command_reference() -> str:
    """Markdown: a heading and the ``--help`` of each command."""
    parts = ["```", help_text(), "```", ""]
    for name in command_names():
        parts += [f"### `esctl {name}`", "", "```", help_text(name), "```", ""]
    return "\n".join(parts)


def exit_code_table() -> str:
    """Markdown: the exit-code table, from :data:`esctl.exit_codes.MEANINGS`."""
    rows = ["| code | meaning |", "|---|---|"]
    rows += [f"| {code} | {meaning} |" for code, meaning in MEANINGS.items()]
    return "\n".join(rows) + "\n"
