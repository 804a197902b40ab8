"""esctl_lib: event sourcing and CQRS for Python.

The names below are the public API; everything else is private and may change.
"""

from esctl_lib.aggregates import Aggregate, collect_handlers, handles
from esctl_lib.errors import (
    AggregateError,
    ConcurrencyError,
    ConfigError,
    DuplicateEventError,
    DuplicateEventTypeError,
    EsctlError,
    EventError,
    InvalidEventError,
    ProcessingError,
    ProcessorLockedError,
    SchemaError,
    SerializationError,
    StoreError,
    StoreUnavailableError,
    TrackerError,
    UnknownEventError,
    UnknownEventTypeError,
)
from esctl_lib.events import Event, EventRegistry, default_registry, type_name_for
from esctl_lib.repository import Repository
from esctl_lib.serialization import BodyEncoder, default_encoder
from esctl_lib.stores import mask_url, open_store
from esctl_lib.stores.base import EventStore, Page, Transaction

__all__ = [
    "Aggregate",
    "AggregateError",
    "BodyEncoder",
    "ConcurrencyError",
    "ConfigError",
    "DuplicateEventError",
    "DuplicateEventTypeError",
    "EsctlError",
    "Event",
    "EventError",
    "EventRegistry",
    "EventStore",
    "InvalidEventError",
    "Page",
    "ProcessingError",
    "ProcessorLockedError",
    "Repository",
    "SchemaError",
    "SerializationError",
    "StoreError",
    "StoreUnavailableError",
    "TrackerError",
    "Transaction",
    "UnknownEventError",
    "UnknownEventTypeError",
    "collect_handlers",
    "default_encoder",
    "default_registry",
    "handles",
    "mask_url",
    "open_store",
    "type_name_for",
]
