"""Encoding of event bodies into JSON-able values.

Built in: ``Decimal`` (as a string, keeping every digit), ``datetime`` (ISO 8601 with
microseconds and offset; naive values are taken as UTC), ``date``, ``time``, ``UUID``,
``Enum`` (its value), tuples, sets and frozensets (as lists), nested dicts and lists.
Applications register encoders for their own types with :meth:`BodyEncoder.register`.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from esctl_lib.errors import SerializationError

JSONValue = Any
Encoder = Callable[[Any], JSONValue]

_SCALARS = (str, int, float, bool, type(None))


def _encode_datetime(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat(timespec="microseconds")


def _encode_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"non-finite Decimal {value}")
    return str(value)


def _encode_float(value: float) -> float:
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"non-finite float {value}")
    return value


class BodyEncoder:
    """Turns an event body into a dict of JSON-able values, naming the key path on failure."""

    def __init__(self) -> None:
        self._encoders: dict[type, Encoder] = {
            Decimal: _encode_decimal,
            dt.datetime: _encode_datetime,
            dt.date: lambda d: d.isoformat(),
            dt.time: lambda t: t.isoformat(timespec="microseconds"),
            uuid.UUID: str,
        }

    def register(self, cls: type, encoder: Encoder) -> BodyEncoder:
        """Encode instances of ``cls`` (and its subclasses) with ``encoder``; returns self."""
        self._encoders[cls] = encoder
        return self

    def encode_body(self, body: Mapping[str, Any] | None) -> dict[str, JSONValue]:
        """Encode a whole body. Raises :class:`SerializationError` naming the bad key path."""
        if body is None:
            return {}
        if body.__class__ is dict and _is_flat_json(body):
            return dict(body)
        if not isinstance(body, Mapping):
            raise SerializationError(
                f"event body must be a mapping, not {type(body).__name__}", path="$"
            )
        encoded = self._encode(body, "$")
        assert isinstance(encoded, dict)
        return encoded

    def dumps(self, body: Mapping[str, Any] | None) -> str:
        """Encode a body straight to a compact JSON string."""
        return json.dumps(self.encode_body(body), separators=(",", ":"), ensure_ascii=False)

    def _encode(self, value: Any, path: str) -> JSONValue:
        cls = type(value)
        if cls is str or cls is int or cls is bool or value is None:
            return value
        if cls is float:
            try:
                return _encode_float(value)
            except ValueError as e:
                raise SerializationError(f"cannot encode body at {path}: {e}", path=path) from e
        if isinstance(value, Mapping):
            out: dict[str, JSONValue] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise SerializationError(
                        f"cannot encode body at {path}: key {key!r} is not a string", path=path
                    )
                out[key] = self._encode(item, f"{path}.{key}")
            return out
        if isinstance(value, (list, tuple, set, frozenset)):
            items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
            return [self._encode(item, f"{path}[{i}]") for i, item in enumerate(items)]
        if isinstance(value, enum.Enum):
            return self._encode(value.value, path)
        encoder = self._find_encoder(cls)
        if encoder is None:
            if isinstance(value, _SCALARS):  # int/str/float subclasses
                return self._encode(_base_scalar(value), path)
            raise SerializationError(
                f"cannot encode body at {path}: {cls.__name__} is not JSON serializable "
                f"(register an encoder for it)",
                path=path,
            )
        try:
            return self._encode(encoder(value), path)
        except SerializationError:
            raise
        except Exception as e:
            raise SerializationError(f"cannot encode body at {path}: {e}", path=path) from e

    def _find_encoder(self, cls: type) -> Encoder | None:
        for klass in cls.__mro__:
            found = self._encoders.get(klass)
            if found is not None:
                return found
        return None


def _is_flat_json(body: dict[Any, Any]) -> bool:
    """True when every key is a str and every value a str, int, bool or None: the common
    body that needs no encoding at all (floats are checked for NaN on the full path)."""
    for key, value in body.items():
        cls = value.__class__
        if key.__class__ is not str or not (
            cls is str or cls is int or cls is bool or value is None
        ):
            return False
    return True


def _base_scalar(value: Any) -> Any:
    for base in (bool, int, float, str):
        if isinstance(value, base):
            return base(value)
    return value


default_encoder = BodyEncoder()
"""The encoder stores use unless given another."""
