"""Retry policies: how long a processor waits after a failure before it tries again.

- ``none``: do not retry; the worker raises and the processor stops (under ``esctl run``
  it stays stopped: the runner does not restart it). With ``max_attempts`` the event is
  parked at its first failure instead and the processor goes on.
- ``constant``: wait 1 s every time (EventSourcery's default).
- ``exponential``: 1 s, doubling up to 64 s while the *same* event keeps failing; back to
  1 s for a different event or an error that is not a :class:`ProcessingError`.

A policy may also carry ``max_attempts``: after that many failures of one event the worker
parks it (see :mod:`esctl_lib.processing.parking`) and moves on. ``sleep`` and ``clock``
are injectable so tests never really sleep.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from esctl_lib.config import RETRY_POLICY_NAMES
from esctl_lib.errors import ConfigError, ProcessingError

if TYPE_CHECKING:
    from esctl_lib.processing.processor import Processor

#: The policy names (``[processing] retry``), defined once in :mod:`esctl_lib.config`.
RETRY_POLICIES = RETRY_POLICY_NAMES


class RetryPolicy(ABC):
    """Decides the wait after each failure. One instance per running processor (it has state)."""

    name: ClassVar[str]

    def __init__(
        self,
        *,
        max_attempts: int | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_attempts is not None and (not isinstance(max_attempts, int) or max_attempts < 1):
            raise ConfigError(f"max_attempts must be a whole number >= 1, got {max_attempts!r}")
        self.max_attempts = max_attempts
        self.clock = clock
        self._sleep = sleep

    @abstractmethod
    def next_delay(self, error: BaseException) -> float | None:
        """Seconds to wait before the next attempt after ``error``; None means give up."""

    def pause(self, seconds: float, stop: threading.Event) -> None:
        """Wait ``seconds``, waking early when ``stop`` is set (or call the injected sleep)."""
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            stop.wait(seconds)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} max_attempts={self.max_attempts}>"


class NoRetry(RetryPolicy):
    """Never retry: the processor stops on its first error."""

    name = "none"

    def next_delay(self, error: BaseException) -> float | None:
        return None


class ConstantRetry(RetryPolicy):
    """Wait the same ``interval`` (1 s) after every failure."""

    name = "constant"

    def __init__(self, *, interval: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.interval = interval

    def next_delay(self, error: BaseException) -> float | None:
        return self.interval


class ExponentialRetry(RetryPolicy):
    """1 s doubling to a 64 s cap while one event keeps failing; 1 s again otherwise."""

    name = "exponential"

    def __init__(self, *, initial: float = 1.0, cap: float = 64.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.initial = initial
        self.cap = cap
        self._interval = initial
        self._last_uuid: str | None = None

    def next_delay(self, error: BaseException) -> float | None:
        uuid = error.event_uuid if isinstance(error, ProcessingError) else None
        if uuid is not None and uuid == self._last_uuid:
            self._interval = min(self._interval * 2, self.cap)
        else:
            self._interval = self.initial
        self._last_uuid = uuid
        return self._interval


#: One class per name in RETRY_POLICIES (a test keeps the two in step).
_CLASSES: dict[str, type[RetryPolicy]] = {
    "none": NoRetry,
    "constant": ConstantRetry,
    "exponential": ExponentialRetry,
}


def retry_policy(name: str, **kwargs: Any) -> RetryPolicy:
    """A new policy by name: ``"none"``, ``"constant"`` or ``"exponential"``.

    Keyword arguments (``max_attempts``, ``sleep``, ``clock``, ...) go to the policy.
    """
    cls = _CLASSES.get(name)
    if cls is None:
        raise ConfigError(
            f"unknown retry policy {name!r}: use one of {', '.join(RETRY_POLICIES)}"
        )
    return cls(**kwargs)


def retry_policy_for(
    processor: Processor, default: str = "constant", **kwargs: Any
) -> RetryPolicy:
    """The policy a processor runs with: its own ``retry`` and ``max_attempts`` when it
    declares them, else ``default`` (the configured policy) and ``kwargs``."""
    if processor.max_attempts is not None:
        kwargs["max_attempts"] = processor.max_attempts
    return retry_policy(processor.retry or default, **kwargs)
