"""The library's exception tree: every error it raises on purpose derives from :class:`EsctlError`.

::

    EsctlError
    ├── ConfigError                 bad or missing configuration
    ├── EventError                  an event that cannot be built, stored or read
    │   ├── InvalidEventError       bad aggregate id, a body no backend can store, ...
    │   │   └── SerializationError  a body value that cannot be encoded (names the key path)
    │   ├── UnknownEventTypeError   a type name with no registered class, where one is required
    │   └── DuplicateEventTypeError two classes claiming one type name
    ├── AggregateError
    │   └── UnknownEventError       an aggregate has no handler for an event
    ├── StoreError
    │   ├── StoreUnavailableError   connection lost or refused (retryable)
    │   ├── SchemaError             schema missing, or newer than this code
    │   ├── ConcurrencyError        expected version does not match
    │   ├── DuplicateEventError     an event's uuid is already stored
    │   │   └── IdempotencyError    a command id reused for different events
    │   └── TrackerError            a tracker asked to move backwards by accident
    └── ProcessingError             a processor's handler failed (names processor and event)
        └── ProcessorLockedError    another live instance holds the processor

Errors are picklable, so they cross process boundaries intact.
"""

from __future__ import annotations

from typing import Any


class EsctlError(Exception):
    """Root of every error the library raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[EsctlError], args: tuple[Any, ...], state: dict[str, Any]) -> EsctlError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class ConfigError(EsctlError):
    """Configuration is missing, malformed, or names something that does not exist."""


class EventError(EsctlError):
    """An event cannot be built, stored or read."""


class InvalidEventError(EventError):
    """An event's fields are invalid (bad UUID, several aggregates in one append, ...)."""


class SerializationError(InvalidEventError):
    """A body value cannot be encoded as JSON; ``path`` names where it sits.

    A kind of :class:`InvalidEventError`: a body that cannot be stored is refused the same
    way whether the encoder or :func:`~esctl_lib.serialization.validate_body` finds it."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class UnknownEventTypeError(EventError):
    """A type name has no registered event class."""

    def __init__(self, type_name: str) -> None:
        super().__init__(f"unknown event type {type_name!r}")
        self.type_name = type_name


class DuplicateEventTypeError(EventError):
    """Two different event classes claim the same type name."""


class AggregateError(EsctlError):
    """An aggregate cannot apply an event or run a command."""


class UnknownEventError(AggregateError):
    """An aggregate has no handler for an event type."""


class StoreError(EsctlError):
    """The event store failed."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached or the connection was lost; retrying may succeed."""


class SchemaError(StoreError):
    """The store's schema is missing or newer than this version of the library."""


class ConcurrencyError(StoreError):
    """An append's expected version does not match the aggregate's current version."""

    def __init__(self, aggregate_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"concurrency conflict on aggregate {aggregate_id}: "
            f"expected version {expected}, current version is {actual}"
        )
        self.aggregate_id = aggregate_id
        self.expected = expected
        self.actual = actual


class DuplicateEventError(StoreError):
    """An appended event's uuid is already stored (the append wrote nothing)."""

    def __init__(self, uuid: str | None = None) -> None:
        super().__init__(
            f"an event with uuid {uuid} is already stored"
            if uuid
            else "an event with one of these uuids is already stored"
        )
        self.uuid = uuid


class IdempotencyError(DuplicateEventError):
    """A command id was used again for different events (see :mod:`esctl_lib.idempotency`):
    the events its first use stored are not those of this command."""

    def __init__(self, command_id: str, detail: str) -> None:
        StoreError.__init__(
            self, f"command id {command_id!r} was already used for different events: {detail}"
        )
        self.uuid = None
        self.command_id = command_id


class TrackerError(StoreError):
    """A tracker was asked to move backwards without an explicit reset."""


class ProcessingError(EsctlError):
    """A processor failed on an event. The original exception is ``__cause__``."""

    def __init__(
        self,
        message: str,
        *,
        processor: str,
        event_id: int | None = None,
        event_type: str | None = None,
        event_uuid: str | None = None,
        aggregate_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.processor = processor
        self.event_id = event_id
        self.event_type = event_type
        self.event_uuid = event_uuid
        self.aggregate_id = aggregate_id


class ProcessorLockedError(ProcessingError):
    """Another live instance already runs this processor."""
