"""Turning events into the values a backend stores (the memory store's append path)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from esctl_lib.events import Event, EventField, check_type_name, load_json, utc_now
from esctl_lib.serialization import (
    BodyEncoder,
    CheckedJSON,
    checked_copy,
    is_plain,
    validate_body,
)

_BODY = EventField.BODY


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    """An event's fields encoded for storage; ``body`` is the JSON-able form of the body."""

    event_class: type[Event]
    uuid: str
    type: str
    body: dict[str, Any]
    created_at: dt.datetime
    correlation_id: str | None
    causation_id: str | None
    metadata: dict[str, Any]


def encode_checked(
    event: Event, encode: Callable[[Any], dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The rule every backend applies to an event before it writes anything.

    An untyped event's type name is checked (a class's own name was checked when it
    registered); body and metadata are encoded (``SerializationError`` names the key) and
    checked against :func:`~esctl_lib.serialization.validate_body`. Returns the encoded body
    and metadata (None when there is none).
    """
    if event.__class__ is Event:
        check_type_name(event.type)
    if (event._f[_BODY].__class__ is CheckedJSON
            and getattr(encode, "__func__", None) is _ENCODE_BODY):
        body = load_json(event._f[_BODY])  # a typed body's dump, checked when it was made
    else:
        body = _checked_body(event, encode)
    if not event.metadata:
        return body, None
    metadata = encode(event.metadata)
    validate_body(metadata, field="metadata")
    return body, metadata


def _checked_body(event: Event, encode: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    raw = event.body
    # JSON values only (the common body): copied and checked in one pass. The library's
    # own encoder returns such values unchanged, so the result is the same; anything else
    # (and a subclass's encode_body) takes the full path, which names what is wrong.
    body = (checked_copy(raw) if raw.__class__ is dict
            and getattr(encode, "__func__", None) is _ENCODE_BODY else None)
    if body is None:
        body = encode(raw)
        validate_body(body)
    return body


_ENCODE_BODY = BodyEncoder.encode_body


def _compact_dumps() -> Callable[[Any], str]:
    """Compact JSON (``separators=(",", ":")``, ``ensure_ascii=False``) straight from the C
    encoder: ``JSONEncoder.encode`` minus its two Python frames per call. Only for values
    already checked (a tree of JSON values: no cycle check, no ``default``)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: the documented path
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    encode = make(None, None, json.encoder.encode_basestring, None, ":", ",", False, False,
                  True)
    join = "".join

    def dumps(value: Any) -> str:
        return join(encode(value, 0))

    return dumps


#: Compact JSON text of checked JSON values (what the stores keep).
dump_json = _compact_dumps()


def dump_checked(event: Event, encode: Callable[[Any], dict[str, Any]]
                 ) -> tuple[str, str | None]:
    """:func:`encode_checked` straight to JSON text: the body's, and the metadata's (None
    when there is none). A body of plain JSON values is checked and dumped as it is, with
    no encoded copy (the SQLite append path: the stored event decodes the text if asked)."""
    if event.__class__ is Event:
        check_type_name(event.type)
    raw: Any = event._f[_BODY]
    if raw.__class__ is CheckedJSON and getattr(encode, "__func__", None) is _ENCODE_BODY:
        body = str(raw)  # a typed body's dump, checked when it was made: stored as it is
    elif ((raw := event.body).__class__ is dict
          and getattr(encode, "__func__", None) is _ENCODE_BODY and is_plain(raw)):
        body = dump_json(raw)
    else:
        encoded = encode(raw)
        validate_body(encoded)
        body = dump_json(encoded)
    meta = event.metadata
    if not meta:
        return body, None
    encoded_meta = encode(meta)
    validate_body(encoded_meta, field="metadata")
    return body, dump_json(encoded_meta)


def prepare_events(events: Sequence[Event], encoder: BodyEncoder) -> list[PreparedEvent]:
    """Events encoded and checked by :func:`encode_checked`, with their times filled in."""
    now = utc_now()
    out = []
    for event in events:
        body, metadata = encode_checked(event, encoder.encode_body)
        out.append(
            PreparedEvent(
                event_class=type(event),
                uuid=event.uuid,
                type=event.type,
                body=body,
                created_at=event.created_at or now,
                correlation_id=event.correlation_id,
                causation_id=event.causation_id,
                metadata=metadata or {},
            )
        )
    return out
