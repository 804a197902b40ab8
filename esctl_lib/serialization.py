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

from esctl_lib.errors import InvalidEventError, SerializationError

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
        """Encode a whole body. Raises :class:`SerializationError` naming the bad key path
        (nesting deeper than :data:`MAX_DEPTH` included: it could not be stored anyway)."""
        if body is None:
            return {}
        if body.__class__ is dict and _is_flat_json(body):
            return dict(body)
        if not isinstance(body, Mapping):
            raise SerializationError(
                f"event body must be a mapping, not {type(body).__name__}", path="$"
            )
        encoded = self._encode(body, "$", 1)
        assert isinstance(encoded, dict)
        return encoded

    def dumps(self, body: Mapping[str, Any] | None) -> str:
        """Encode a body straight to a compact JSON string."""
        return json.dumps(self.encode_body(body), separators=(",", ":"), ensure_ascii=False)

    def _encode(self, value: Any, path: str, depth: int) -> JSONValue:
        cls = type(value)
        if cls is str or cls is int or cls is bool or value is None:
            return value
        if cls is float:
            try:
                return _encode_float(value)
            except ValueError as e:
                raise SerializationError(f"cannot encode body at {path}: {e}", path=path) from e
        if isinstance(value, Mapping | list | tuple | set | frozenset) and depth > MAX_DEPTH:
            raise SerializationError(
                f"cannot encode body at {_short_path(path)}: nested deeper than {MAX_DEPTH} levels",
                path=path)
        if isinstance(value, Mapping):
            out: dict[str, JSONValue] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise SerializationError(
                        f"cannot encode body at {path}: key {short_repr(key)} is not a string",
                        path=path,
                    )
                out[key] = self._encode(item, key_path(path, key), depth + 1)
            return out
        if isinstance(value, (list, tuple, set, frozenset)):
            items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
            return [self._encode(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(items)]
        if isinstance(value, enum.Enum):
            return self._encode(value.value, path, depth)
        encoder = self._find_encoder(cls)
        if encoder is None:
            if isinstance(value, _SCALARS):  # int/str/float subclasses
                return self._encode(_base_scalar(value), path, depth)
            raise SerializationError(
                f"cannot encode body at {path}: {cls.__name__} is not JSON serializable "
                f"(register an encoder for it)",
                path=path,
            )
        try:
            return self._encode(encoder(value), path, depth)
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


#: Integers in a body must lie strictly between ``-MAX_INT`` and ``MAX_INT`` (64-bit signed:
#: what PostgreSQL's jsonb, SQLite's JSON functions and most JSON readers handle exactly).
MAX_INT = 2**63
#: The deepest nesting of objects and arrays a body may have (the body itself is level 1).
MAX_DEPTH = 64
_NUL = "\x00"


def validate_body(value: Any, *, field: str = "body") -> None:
    """The one rule for what a stored body (or metadata) may hold, on every backend.

    ``value`` is an encoded body (JSON values only: dict, list, str, int, float, bool,
    None). Raises :class:`InvalidEventError` naming the path (``body.items[2].name``) of
    the first value that breaks the rule:

    - object keys are strings;
    - no string (key or value) holds ``\\u0000`` or a lone surrogate (it must be valid
      Unicode, encodable as UTF-8);
    - floats are finite (no NaN or Infinity; note that ``json.loads("1e400")`` is inf);
    - integers lie strictly between ``-2**63`` and ``2**63`` (:data:`MAX_INT`);
    - objects and arrays nest at most :data:`MAX_DEPTH` (64) levels deep.

    Stores call it before writing anything, so a refused body leaves no trace.
    """
    if value.__class__ is dict:
        for key, item in value.items():  # the common flat body: one pass, no recursion
            cls = item.__class__
            if key.__class__ is not str or _NUL in key or not (key.isascii() or _utf8(key)):
                break
            if cls is str:
                if _NUL in item or not (item.isascii() or _utf8(item)):
                    break
            elif cls is int:
                if not -MAX_INT < item < MAX_INT:
                    break
            elif not (cls is bool or item is None):
                break
        else:
            return
    _check(value, field, 1)


_INF = float("inf")
#: How deep :func:`checked_copy` follows nested containers before leaving the body to the
#: full encoder and :func:`validate_body` (which know every rule and name the path).
_FAST_DEPTH = 8


def checked_copy(body: dict[str, Any]) -> dict[str, Any] | None:
    """A copy of ``body`` when it holds only JSON values that :func:`validate_body` accepts
    (the encoder would return them unchanged); None when anything needs the full path.

    One pass instead of the encoder's walk plus :func:`validate_body`'s: the append hot
    path. It never decides that a body is wrong; a None sends the body through the full
    encoder and :func:`validate_body`, which raise the error naming the path.
    """
    return _copy_dict(body, 1)


def _copy_dict(value: dict[Any, Any], depth: int) -> dict[str, Any] | None:
    out = {}
    for key, item in value.items():
        if key.__class__ is not str or _NUL in key or not (key.isascii() or _utf8(key)):
            return None
        cls = item.__class__
        if cls is str:
            if _NUL in item or not (item.isascii() or _utf8(item)):
                return None
        elif cls is int:
            if not -MAX_INT < item < MAX_INT:
                return None
        elif cls is float:
            if not -_INF < item < _INF:  # NaN fails both comparisons
                return None
        elif cls is bool or item is None:
            pass
        elif cls is list:
            if depth >= _FAST_DEPTH:
                return None
            item = _copy_list(item, depth + 1)
            if item is None:
                return None
        elif cls is dict:
            if depth >= _FAST_DEPTH:
                return None
            item = _copy_dict(item, depth + 1)
            if item is None:
                return None
        else:
            return None
        out[key] = item
    return out


def _copy_list(value: list[Any], depth: int) -> list[Any] | None:
    out = []
    for item in value:
        cls = item.__class__
        if cls is str:
            if _NUL in item or not (item.isascii() or _utf8(item)):
                return None
        elif cls is int:
            if not -MAX_INT < item < MAX_INT:
                return None
        elif cls is float:
            if not -_INF < item < _INF:
                return None
        elif cls is bool or item is None:
            pass
        elif cls is list:
            if depth >= _FAST_DEPTH:
                return None
            item = _copy_list(item, depth + 1)
            if item is None:
                return None
        elif cls is dict:
            if depth >= _FAST_DEPTH:
                return None
            item = _copy_dict(item, depth + 1)
            if item is None:
                return None
        else:
            return None
        out.append(item)
    return out


def is_plain(body: dict[str, Any]) -> bool:
    """True when ``body`` holds only JSON values that :func:`validate_body` accepts, nested
    at most a few levels (what :func:`checked_copy` copies, without copying it)."""
    return _plain_dict(body, 1)


def _plain_dict(value: dict[Any, Any], depth: int) -> bool:
    for key, item in value.items():
        if key.__class__ is not str or _NUL in key or not (key.isascii() or _utf8(key)):
            return False
        cls = item.__class__
        if cls is str:
            if _NUL in item or not (item.isascii() or _utf8(item)):
                return False
        elif cls is int:
            if not -MAX_INT < item < MAX_INT:
                return False
        elif cls is float:
            if not -_INF < item < _INF:
                return False
        elif cls is bool or item is None:
            pass
        elif cls is list:
            if depth >= _FAST_DEPTH or not _plain_list(item, depth + 1):
                return False
        elif cls is dict:
            if depth >= _FAST_DEPTH or not _plain_dict(item, depth + 1):
                return False
        else:
            return False
    return True


def _plain_list(value: list[Any], depth: int) -> bool:
    for item in value:
        cls = item.__class__
        if cls is str:
            if _NUL in item or not (item.isascii() or _utf8(item)):
                return False
        elif cls is int:
            if not -MAX_INT < item < MAX_INT:
                return False
        elif cls is float:
            if not -_INF < item < _INF:
                return False
        elif cls is bool or item is None:
            pass
        elif cls is list:
            if depth >= _FAST_DEPTH or not _plain_list(item, depth + 1):
                return False
        elif cls is dict:
            if depth >= _FAST_DEPTH or not _plain_dict(item, depth + 1):
                return False
        else:
            return False
    return True


def _check(value: Any, path: str, depth: int) -> None:
    cls = value.__class__
    if cls is str:
        _check_text(value, path)
    elif cls is bool or value is None:
        return
    elif isinstance(value, int):
        if not -MAX_INT < value < MAX_INT:
            raise InvalidEventError(
                f"{path}: integer {short_repr(value)} is out of range (|n| must be below 2**63)")
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidEventError(f"{path}: {value} is not a finite number")
    elif isinstance(value, dict | list):
        if depth > MAX_DEPTH:
            raise InvalidEventError(f"{_short_path(path)}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, list):
            for i, item in enumerate(value):
                _check(item, f"{path}[{i}]", depth + 1)
            return
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidEventError(f"{path}: key {short_repr(key)} is not a string")
            _check_text(key, f"{path} (key {short_repr(key)})")
            _check(item, key_path(path, key), depth + 1)
    elif isinstance(value, str):
        _check_text(value, path)
    else:
        raise InvalidEventError(f"{path}: {cls.__name__} is not a JSON value")


def _short_path(path: str, limit: int = 80) -> str:
    return path if len(path) <= limit else f"{path[:limit - 20]}...{path[-17:]}"


def key_path(path: str, key: str) -> str:
    """``path.key``, or ``path['key']`` for a key that is long or not printable (so an
    error message naming it stays one short line)."""
    if len(key) <= 60 and key.isprintable() and "." not in key and "[" not in key:
        return f"{path}.{key}"
    return f"{path}[{short_repr(key)}]"


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)`` for an error message: at most ``limit`` characters, one line, and
    never failing (an int too long to print names its digit count instead)."""
    if isinstance(value, int) and value.bit_length() > 128:  # too long to show (or to str())
        digits = int(abs(value).bit_length() * 0.30103) + 1
        return f"{'-' if value < 0 else ''}<an integer of about {digits} digits>"
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__, or a value too big to print
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _utf8(text: str) -> bool:
    """True when ``text`` is valid Unicode (no lone surrogates), so UTF-8 can hold it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(text: str, path: str) -> None:
    if _NUL in text:
        raise InvalidEventError(f"{path}: contains \\u0000, which no store keeps")
    if not (text.isascii() or _utf8(text)):
        raise InvalidEventError(f"{path}: not valid Unicode (a lone surrogate); it cannot be stored")


class CheckedJSON(str):
    """Compact JSON text of a body already known to pass :func:`validate_body`: a typed
    body's dump (:mod:`esctl_lib.typed`). An event may hold it in place of its body dict
    (decoded on first access); a store given it with the default encoder stores the text
    as it is, with no walk over the values and no second dump. Built only by this library."""

    __slots__ = ()


default_encoder = BodyEncoder()
"""The encoder stores use unless given another."""
