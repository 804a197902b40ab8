"""Settings validated without pydantic, when nothing needs converting (start-up time).

Importing pydantic and pydantic-settings (and the plugin discovery pydantic runs through
``importlib.metadata``) is most of the start-up time of a command like ``esctl status``.
Most configurations need none of it: every value in the file and the flags already has its
declared type, and environment variables set only text settings (``ESCTL_STORE__URL``).
:func:`plain_values` takes that path and returns the same values pydantic would; anything
else (a number or list from the environment, a whole section as JSON, a value of another
type, a variable it does not recognise) returns None, and pydantic-settings validates as
always, with its error messages.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any, Literal, get_args, get_origin, get_type_hints

_NO = object()


class _Section:
    """What ``load_settings`` reads of a validated section: ``model_dump()``."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def model_dump(self) -> dict[str, Any]:
        return dict(self._values)


def plain_values(sections: Mapping[str, type], file_data: Mapping[str, Mapping[str, Any]],
                 flags: Mapping[str, Mapping[str, Any]], environ: Mapping[str, str], *,
                 prefix: str, config_variable: str) -> Any | None:
    """Each section's values (flags > environment > file > defaults) as objects with
    ``model_dump()``, or None when pydantic must decide."""
    env = _environment(sections, environ, prefix, config_variable)
    if env is None:
        return None
    out: dict[str, _Section] = {}
    for name, cls in sections.items():
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw: Any = _NO
            for source in (flags.get(name, {}), env.get(name, {}), file_data.get(name, {})):
                if f.name in source:
                    raw = source[f.name]
                    break
            if raw is _NO:
                if f.default is MISSING:
                    return None
                values[f.name] = f.default
                continue
            value = _convert(hints[f.name], raw)
            if value is _NO:
                return None
            values[f.name] = value
        out[name] = _Section(values)
    return types.SimpleNamespace(**out)


def _environment(sections: Mapping[str, type], environ: Mapping[str, str], prefix: str,
                 config_variable: str) -> dict[str, dict[str, str]] | None:
    """``ESCTL_<SECTION>__<KEY>`` variables of text settings, or None for anything else."""
    found: dict[str, dict[str, str]] = {}
    for variable, value in environ.items():
        upper = variable.upper()
        if not upper.startswith(prefix) or upper == config_variable.upper():
            continue
        section, sep, key = upper[len(prefix):].partition("__")
        cls = sections.get(section.lower())
        if not sep or cls is None:
            return None
        hints = get_type_hints(cls)
        hint = hints.get(key.lower())
        if hint not in (str, str | None):
            return None
        found.setdefault(section.lower(), {})[key.lower()] = value
    return found


def _convert(hint: Any, value: Any) -> Any:
    """``value`` as pydantic would take it for ``hint``, or ``_NO`` when unsure."""
    if hint is str:
        return value if isinstance(value, str) else _NO
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok else _NO
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _NO
    origin = get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = get_args(hint)
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        return _convert(rest[0], value) if len(rest) == 1 else _NO
    if origin is tuple:
        args = get_args(hint)
        ok = (args[1:] == (Ellipsis,) and isinstance(value, list | tuple)
              and all(_convert(args[0], v) is v for v in value))
        return tuple(value) if ok else _NO
    if origin is Literal:
        return value if isinstance(value, str) and value in get_args(hint) else _NO
    return _NO
