"""``esctl status`` without Typer: the command's body, and the fast path that runs it.

Health probes run ``esctl status`` every few seconds, and on PostgreSQL importing Typer
was a fifth of its time. So :func:`fast_status` parses the command line itself when it is
a plain ``esctl status`` (the global options, before or after the command; the command's
options and its NAME; each at most once; ``--opt value`` or ``--opt=value``; values the
Typer app would take as they are), and runs :func:`show_status`, the same body the Typer
command runs (``esctl.commands.processing.status``). Anything else (``--help``, a value
it does not take, a repeated or unknown option, ``--``, shell completion) returns None
and goes to the Typer app, so every usage error, and the help, still comes from Typer.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from esctl import render
from esctl.context import Session, configured_processor, error_exit, new_session
from esctl.exit_codes import FAILURE, OK

#: The global options that take a value (``esctl.cli.main``), by the parameter they set.
GLOBAL_OPTIONS = {"--config": "config", "-c": "config", "--store-url": "store_url",
                  "--schema": "schema", "--log-level": "log_level"}
#: ``esctl status``'s options that take a value, and how the Typer app converts it.
VALUE_OPTIONS = {"--max-lag": "max_lag", "--max-lag-seconds": "max_lag_seconds",
                 "--stale-after": "stale_after"}
FLAGS = {"--check": "check", "--json": "as_json"}
# What esctl.parser converts without Typer's coercion; each option is at_least(0).
_WHOLE = re.compile(r"[+]?[0-9]+")
_DECIMAL = re.compile(r"[+]?[0-9]+(\.[0-9]+)?")


def parse_status(args: Sequence[str]) -> dict[str, Any] | None:
    """The parameters of a plain ``esctl status`` command line (``args`` without the
    program name), or None when the Typer app should parse it (see the module docstring)."""
    values: dict[str, Any] = {}
    command = False
    tokens = list(args)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if not token.startswith("-"):
            if not command:
                if token != "status":
                    return None
                command = True
            elif "name" in values:
                return None  # an extra argument: Typer's error
            else:
                values["name"] = token
            continue
        option, equals, value = token.partition("=")
        parsed: Any = True
        if option in FLAGS and command and not equals:
            key = FLAGS[option]
        elif option in GLOBAL_OPTIONS or (option in VALUE_OPTIONS and command):
            if not equals:
                if index >= len(tokens):
                    return None
                value, index = tokens[index], index + 1
            elif not option.startswith("--"):
                return None  # -c=x: Click reads "=x"; let it
            if value.startswith("-"):
                return None
            key, parsed = GLOBAL_OPTIONS.get(option) or VALUE_OPTIONS[option], value
        else:
            return None  # --help, --version, --, -cPATH, an unknown option...
        if key in values:
            return None
        values[key] = parsed
    return _converted(values) if command else None


def _converted(values: dict[str, Any]) -> dict[str, Any] | None:
    if "config" in values:
        values["config"] = Path(values["config"])
    if "max_lag" in values:
        if not _WHOLE.fullmatch(values["max_lag"]):
            return None
        values["max_lag"] = int(values["max_lag"])
    for key in ("max_lag_seconds", "stale_after"):
        if key in values:
            if not _DECIMAL.fullmatch(values[key]):
                return None
            values[key] = float(values[key])
    return values


def fast_status(args: Sequence[str]) -> int | None:
    """Run ``esctl status`` without Typer and return its exit code, or None (nothing run)
    when the command line is for the Typer app."""
    if "_ESCTL_COMPLETE" in os.environ:  # Click's shell completion
        return None
    values = parse_status(args)
    if values is None:
        return None
    session = new_session(*(values.pop(k, None)
                            for k in ("config", "store_url", "schema", "log_level")))
    try:
        return show_status(session, **values)
    except BaseException as e:
        code = error_exit(e)
        if code is None:
            raise
        return code
    finally:
        session.close()


def show_status(s: Session, name: str | None = None, *, check: bool = False,
                max_lag: int | None = None, max_lag_seconds: float | None = None,
                stale_after: float | None = None, as_json: bool = False) -> int:
    """Print the status (a table, one processor, ``--check``'s lines or JSON); returns
    the exit code: 1 when a processor is unhealthy."""
    from esctl_lib import status_report

    processors = list(s.app.processors.values())
    if name is not None:
        processors = [configured_processor(s, name)]
    report = status_report(s.store(), processors, max_lag=max_lag,
                           max_lag_seconds=max_lag_seconds, stale_after=stale_after)
    if as_json:
        render.json_out(render.status_json(report, name))
    elif check:
        render.status_check(report)
    elif name is not None:
        render.status_detail(report, name)
    else:
        render.status_table(report)
    return FAILURE if report.failing else OK
