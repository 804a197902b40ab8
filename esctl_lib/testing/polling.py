"""``eventually``: poll a condition until it holds or a deadline passes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_FIRST_POLL = 0.005
_MAX_POLL = 0.1


def eventually(
    condition: Callable[[], T],
    *,
    timeout: float = 10.0,
    what: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``condition`` until it returns something truthy, and return that value.

    Polls quickly at first, then every 0.1 s at most. Raises :class:`AssertionError`
    after ``timeout`` seconds, saying what was awaited (``what``, else the condition's
    name) and its last value. An exception from ``condition`` propagates at once.
    """
    deadline = clock() + timeout
    delay = _FIRST_POLL
    while True:
        value = condition()
        if value:
            return value
        remaining = deadline - clock()
        if remaining <= 0:
            awaited = what or getattr(condition, "__qualname__", repr(condition))
            raise AssertionError(
                f"waited {timeout:g} s for {awaited}; the last check returned {value!r}"
            )
        sleep(min(delay, remaining))
        delay = min(delay * 2, _MAX_POLL)
