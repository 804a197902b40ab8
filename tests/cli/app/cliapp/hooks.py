"""A startup hook for the runner's children."""

from __future__ import annotations

from typing import Any


def started(processor: Any) -> None:
    """Does nothing: proves the configured hook resolves."""
