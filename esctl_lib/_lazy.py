"""Packages that import their public names on first use (PEP 562): ``esctl_lib``,
``esctl_lib.operations`` and ``esctl_lib.processing``, so that a one-shot command loads
only the modules it uses."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, table: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` for ``table`` (name → defining module):
    a name is imported on its first lookup, then kept in ``namespace`` (the package's
    globals), so the next lookup is a plain global."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *table})

    return __getattr__, __dir__
