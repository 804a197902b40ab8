"""The ``esctl`` entry point (:func:`run`).

``esctl status`` is what health probes run, often, so its start-up counts: when its
arguments are plain, :func:`esctl.status.fast_status` parses them and runs it without
importing Typer (a fifth of its time on PostgreSQL). Everything else, ``esctl status
--help`` and any argument it is unsure of included, goes to the Typer app
(:mod:`esctl.cli`), which stays the one definition of the command line. ``app`` is
importable from here too (``from esctl.main import app``), as before.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from esctl.exit_codes import INTERRUPTED

if TYPE_CHECKING:
    from esctl.cli import app as app


def run() -> None:
    """Console-script entry point."""
    try:
        from esctl.status import fast_status

        code = fast_status(sys.argv[1:])
        if code is None:
            from esctl.cli import app

            app()
    except KeyboardInterrupt:  # between parsing and the commands' own handling
        raise SystemExit(INTERRUPTED) from None
    raise SystemExit(code)


def __getattr__(name: str) -> Any:
    if name in {"app", "main", "COMMANDS", "HELP"}:  # what this module used to define
        import esctl.cli

        return getattr(esctl.cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
