"""Events as JSON records: the one format ``tail --json``, ``export`` and ``import`` share."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from typing import Any

from esctl_lib.errors import InvalidEventError
from esctl_lib.events import EVENT_FIELDS, Event, EventRegistry, check_type_name, normalize_uuid
from esctl_lib.serialization import short_repr, validate_body
from esctl_lib.typed import check_data

#: Every field of a record, in the order records are written (an event's fields).
RECORD_FIELDS = EVENT_FIELDS
_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_REQUIRED = ("uuid", "aggregate_id", "type", "body", "version", "created_at")
#: The greatest version an event may have (PostgreSQL stores versions as ``integer``).
MAX_VERSION = 2**31 - 1


def event_record(event: Event) -> dict[str, Any]:
    """Every field of a stored event as JSON-able values (``created_at`` as ISO 8601)."""
    created = event.created_at
    return {
        "id": event.id,
        "uuid": event.uuid,
        "aggregate_id": event.aggregate_id,
        "type": event.type,
        "body": event.body,
        "version": event.version,
        "created_at": created.isoformat(timespec="microseconds") if created else None,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "metadata": event.metadata,
    }


def event_json(event: Event) -> str:
    """One event as a compact JSON line (no newline)."""
    return json.dumps(event_record(event), separators=(",", ":"), ensure_ascii=False,
                      default=_fallback)


def _fallback(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def parse_record(line: str, where: str) -> Event:
    """An event from one exported JSON line; ``where`` (e.g. ``"line 3"``) prefixes errors.

    The event keeps its uuid, type, body, version, created_at, correlation, causation and
    metadata; its ``id`` is left for the target store to assign. Every field is checked
    as a store would check it (the body and metadata against
    :func:`~esctl_lib.serialization.validate_body`), so a record this accepts can be
    appended on every backend.
    """
    data = loads_json(line, where)
    try:
        _check_shape(data)
        validate_body(data["body"])
        if data.get("metadata"):
            validate_body(data["metadata"], field="metadata")
        # Every field is checked and canonical: build the event without checking them again.
        return Event.from_stored(
            None,
            _uuid(data["uuid"], "uuid"),
            _uuid(data["aggregate_id"], "aggregate_id"),
            check_type_name(data["type"]),
            data["body"],
            data["version"],
            _time(data["created_at"]),
            _uuid(data.get("correlation_id"), "correlation_id"),
            _uuid(data.get("causation_id"), "causation_id"),
            data.get("metadata") or {},
        )
    except InvalidEventError as e:
        raise InvalidEventError(f"{where}: {e}") from None


def check_typed_body(registry: EventRegistry, event: Event, where: str) -> None:
    """Check an event's body as a read will: decoded to its class, upcast, then validated
    against the class's body model when it has one (``line 3: body.title: field required``)."""
    decoded = registry.decode(tuple(getattr(event, f) for f in EVENT_FIELDS))
    if decoded.body_model is not None:
        check_data(decoded, where=f"{where}: {decoded.type}")


def _check_shape(data: Any) -> None:
    if not isinstance(data, dict):
        raise InvalidEventError(f"expected a JSON object, got {_kind(data)}")
    unknown = sorted(set(data) - set(RECORD_FIELDS))
    if unknown:
        raise InvalidEventError(f"unknown field(s) {', '.join(unknown)}")
    missing = [f for f in _REQUIRED if data.get(f) is None]
    if missing:
        raise InvalidEventError(f"missing field(s) {', '.join(missing)}")
    if not isinstance(data["body"], dict):
        raise InvalidEventError(f"body must be a JSON object, got {_kind(data['body'])}")
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidEventError("metadata must be a JSON object")
    version = data["version"]
    if (not isinstance(version, int) or isinstance(version, bool)
            or not 1 <= version <= MAX_VERSION):
        raise InvalidEventError(
            f"version must be a whole number from 1 to {MAX_VERSION}, got {short_repr(version)}")
    if not isinstance(data["type"], str) or not data["type"]:
        raise InvalidEventError("type must be a non-empty string")


def _uuid(value: Any, field: str) -> Any:
    if value is None and field in ("correlation_id", "causation_id"):
        return None
    if isinstance(value, str) and _CANONICAL_UUID.match(value):
        return value
    return normalize_uuid(value, field)


def _time(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise InvalidEventError(
            f"created_at must be an ISO 8601 string, got {short_repr(value)}")
    try:
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved out of range
        raise InvalidEventError(
            f"created_at is not an ISO 8601 time in range: {short_repr(value)}") from None


def parse_body(text: str) -> dict[str, Any]:
    """A JSON object from ``text`` that every store can hold (see
    :func:`~esctl_lib.serialization.validate_body`); raises :class:`InvalidEventError` for
    anything else."""
    data = loads_json(text, "body")
    if not isinstance(data, dict):
        raise InvalidEventError(f"body must be a JSON object, got {_kind(data)}")
    validate_body(data)
    return data


def loads_json(text: str, where: str) -> Any:
    """``json.loads`` of outside input: every way it can fail is :class:`InvalidEventError`
    naming ``where`` (bad JSON, nesting too deep for the parser, integers longer than
    Python converts, text that is not a string)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidEventError(f"{where}: not valid JSON: {e}") from e
    except RecursionError as e:
        raise InvalidEventError(f"{where}: JSON nested too deeply to read") from e
    except ValueError as e:  # an integer longer than int() converts (sys.get_int_max_str_digits)
        raise InvalidEventError(
            f"{where}: an integer of more than {sys.get_int_max_str_digits()} digits "
            "(integers must lie within ±2**63)") from e
    except TypeError as e:
        raise InvalidEventError(f"{where}: expected JSON text: {e}") from e


def first_line(e: BaseException) -> str:
    """The first line of an error's text."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number" if isinstance(value, int | float) else type(value).__name__
