"""The documented exit codes of every ``esctl`` command, and the error -> code mapping."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from esctl_lib import EsctlError

OK = 0
#: A runtime failure: a failing processor in ``status``, the store unreachable, a refusal.
FAILURE = 1
#: Bad usage or bad input: malformed JSON, a body that is not an object, an unknown
#: event type, a bad UUID (also what Typer uses for a bad option).
USAGE = 2
#: Configuration: no config found, an unknown key, an import that fails.
CONFIG = 3
#: Concurrency conflict: ``append --expected-version`` does not match.
CONFLICT = 4
#: Interrupted by Ctrl-C (the shell convention, 128 + SIGINT).
INTERRUPTED = 130


def exit_code_for(error: EsctlError) -> int:
    """The exit code for a library error."""
    from esctl_lib import (
        ConcurrencyError,
        ConfigError,
        DuplicateEventError,
        EventError,
    )

    if isinstance(error, ConfigError):
        return CONFIG
    if isinstance(error, ConcurrencyError):
        return CONFLICT
    if isinstance(error, EventError | DuplicateEventError):
        return USAGE
    return FAILURE
