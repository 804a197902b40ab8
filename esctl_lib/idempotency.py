"""Idempotent commands: a retried command appends nothing twice and gets its first result.

A command carries an id (an ``Idempotency-Key`` header, a message id, any string). Saving
with ``command_id=`` gives each event the uuid ``uuid5(COMMAND_NAMESPACE,
"<command_id>/<aggregate_id>/<index>")``, its index counting the events of this save. The
store refuses a second event with the same uuid, so a retry of a command that landed
cannot append again:

- the retry raced the first attempt or rebuilt the aggregate before it landed: its append
  fails (:class:`DuplicateEventError`, or :class:`ConcurrencyError` when the first
  attempt took the version), the events are looked up by uuid and, when they are the
  same events (type, aggregate and body), the stored ones are returned as if this save
  had written them;
- the same command id used for *different* events raises :class:`IdempotencyError`;
- a retry that comes after the first attempt landed loads an aggregate that already holds
  the events, so its rules may refuse the command ("already added"): look the first
  result up before running the command, with :func:`command_result`.

Inside a caller's transaction a failed append may have aborted that transaction, so
there the error is raised as it is.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from esctl_lib.errors import ConcurrencyError, DuplicateEventError, IdempotencyError
from esctl_lib.events import Event, normalize_uuid
from esctl_lib.serialization import BodyEncoder
from esctl_lib.stores.base import EventStore, Transaction

#: The namespace of command event uuids; fixed for ever (changing it would make every
#: retry of a command issued before the change append again).
COMMAND_NAMESPACE = uuid.UUID("3c1b5e0e-7a52-5f0c-9d61-65736374c0de")


def command_event_uuid(command_id: str, aggregate_id: Any, index: int) -> str:
    """The uuid of event ``index`` (from 0) of command ``command_id`` on ``aggregate_id``."""
    if not isinstance(command_id, str) or not command_id:
        raise ValueError(f"command_id must be a non-empty string, got {command_id!r}")
    agg = normalize_uuid(aggregate_id, "aggregate_id")
    return str(uuid.uuid5(COMMAND_NAMESPACE, f"{command_id}/{agg}/{index}"))


def stamp_command(events: Sequence[Event], command_id: str) -> list[Event]:
    """``events`` with the uuids of command ``command_id`` (see the module docstring)."""
    return [e.replace(uuid=command_event_uuid(command_id, e.aggregate_id, i))
            for i, e in enumerate(events)]


def lookup_uuids(events: Sequence[Event], command_id: str) -> list[str]:
    """The uuids to read back after a failed append of ``events``: theirs, and the next
    index's (present when the first attempt stored more events than this one)."""
    uuids = [e.uuid for e in events]
    uuids.append(command_event_uuid(command_id, events[0].aggregate_id, len(events)))
    return uuids


def first_result(
    events: Sequence[Event], found: Sequence[Event], command_id: str, encoder: BodyEncoder
) -> list[Event] | None:
    """The stored events of the command's first attempt when they are ``events``; None
    when none of them is stored (the failure was a real conflict); raises
    :class:`IdempotencyError` when the command id was used for other events."""
    by_uuid = {e.uuid: e for e in found}
    if not by_uuid:
        return None
    if len(by_uuid) != len(events):
        raise IdempotencyError(
            command_id, f"its first use stored {len(by_uuid)} event(s) on aggregate "
            f"{events[0].aggregate_id}, this one has {len(events)}")
    out = []
    for event in events:
        stored = by_uuid.get(event.uuid)
        if stored is None or not same_event(stored, event, encoder):
            raise IdempotencyError(
                command_id, f"event {event.uuid} is stored as {_describe(stored)}, "
                f"this command makes it {event.type} on aggregate {event.aggregate_id}")
        out.append(stored)
    return out


def same_event(stored: Event, event: Event, encoder: BodyEncoder) -> bool:
    """Whether ``event`` (not stored yet) would be stored as ``stored``: same type,
    aggregate and body (compared as JSON)."""
    return (stored.type == event.type and stored.aggregate_id == event.aggregate_id
            and _json(stored.body, encoder) == _json(event.body, encoder))


def collect_result(
    first: Event, following: Sequence[Event], command_id: str
) -> list[Event]:
    """The command's events: ``first`` (its event 0) and those after it in the aggregate
    (``following``, in version order) that carry the command's next uuids."""
    out = [first]
    for event in following:
        if event.uuid != command_event_uuid(command_id, first.aggregate_id, len(out)):
            break
        out.append(event)
    return out


def command_result(store: EventStore, command_id: str, aggregate_id: Any) -> list[Event] | None:
    """The events command ``command_id`` stored on ``aggregate_id``, or None when it has
    stored none: check this before running a retried command (see the module docstring)."""
    found = store.read_by_uuids([command_event_uuid(command_id, aggregate_id, 0)])
    if not found:
        return None
    first = found[0]
    assert first.version is not None
    return collect_result(first, store.read_aggregate(aggregate_id,
                                                      from_version=first.version + 1),
                          command_id)


def append_command(
    store: EventStore, transaction: Transaction | None, events: Sequence[Event],
    expected_version: int, command_id: str,
) -> list[Event]:
    """Append a command's stamped ``events`` (``Repository.save(command_id=...)``); on a
    duplicate uuid or a lost version race outside a transaction, the first result."""
    if transaction is not None:
        return transaction.append(events, expected_version=expected_version)
    try:
        return store.append(events, expected_version=expected_version)
    except (ConcurrencyError, DuplicateEventError) as e:
        return recover(store, events, command_id, e)


def recover(
    store: EventStore, events: Sequence[Event], command_id: str, error: Exception
) -> list[Event]:
    """After ``error`` from appending a command's ``events``: the first attempt's stored
    events, or ``error`` raised again when the command has stored nothing."""
    found = store.read_by_uuids(lookup_uuids(events, command_id))
    result = first_result(events, found, command_id, store.encoder)
    if result is None:
        raise error
    return result


def _json(body: Any, encoder: BodyEncoder) -> str:
    return json.dumps(encoder.encode_body(body), sort_keys=True, default=str)


def _describe(event: Event | None) -> str:
    return "nothing" if event is None else f"{event.type} on aggregate {event.aggregate_id}"
