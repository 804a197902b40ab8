"""The documented exit codes of every ``esctl`` command, and the error -> code mapping.

``MEANINGS`` is the one text of each code: ``esctl --help`` prints it and the README's
exit-code table is generated from it (and tested against it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from esctl_lib import EsctlError

OK = 0
#: A runtime failure: a failing processor in ``status``, the store unreachable, a refusal.
FAILURE = 1
#: Bad usage or bad input: a bad option, malformed JSON, a body that is not an object, an
#: unknown event type or processor name, a bad UUID.
USAGE = 2
#: Configuration: no config found, an unknown key, an import that fails, or a database that
#: refuses the store's settings (authentication, unknown database or role, a bad option).
CONFIG = 3
#: Concurrency conflict: ``append --expected-version`` does not match.
CONFLICT = 4
#: Interrupted by Ctrl-C (the shell convention, 128 + SIGINT), whatever the command.
INTERRUPTED = 130

MEANINGS: dict[int, str] = {
    OK: "success",
    FAILURE: "runtime failure (store unreachable or not set up, a failing, crashed or silent "
             "processor, an unhealthy status --check, run --once that parked events, a "
             "refusal)",
    USAGE: "bad usage or input (bad option, bad JSON or UUID, unknown event type or processor)",
    CONFIG: "configuration error (no config found, unknown key, a module that does not import, "
            "a login, database or option the store refuses)",
    CONFLICT: "concurrency conflict (append --expected-version does not match)",
    INTERRUPTED: "interrupted (Ctrl-C), from any command",
}


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
