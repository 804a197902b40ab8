"""Events: immutable facts, typed by subclassing, named through an explicit registry.

A subclass gets its type name from its class name (``TodoAdded`` → ``todo_added``,
``SMSSent`` → ``sms_sent``) or from ``type_name=``; old names are kept with ``aliases=``::

    class TodoAdded(Event, aliases=("todo_created",)):
        pass

Names are resolved only through an :class:`EventRegistry`, never by importing whatever
a stored row says. An unknown stored type reads back as a plain :class:`Event`.
"""

from __future__ import annotations

import builtins
import datetime as dt
import re
import uuid as uuid_mod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from esctl_lib.errors import DuplicateEventTypeError, InvalidEventError, UnknownEventTypeError

E = TypeVar("E", bound="Event")
Upcaster = Callable[["Event"], "Event"]

_FIELDS = (
    "id",
    "uuid",
    "aggregate_id",
    "type",
    "body",
    "version",
    "created_at",
    "correlation_id",
    "causation_id",
    "metadata",
)
_TYPE_NAME_RE = re.compile(r"^[a-z][a-z0-9_./-]*$")


def type_name_for(class_name: str) -> str:
    """Derive a type name from a class name: ``TodoAdded`` → ``todo_added``, ``SMSSent`` → ``sms_sent``."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", class_name)
    name = re.sub(r"([a-z\d])([A-Z])", r"\1_\2", name)
    return name.replace("-", "_").lower()


def normalize_uuid(value: Any, field: str) -> str:
    """Return ``value`` as a canonical lower-case UUID string, or raise :class:`InvalidEventError`."""
    if isinstance(value, uuid_mod.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid_mod.UUID(value))
        except ValueError:
            pass
    raise InvalidEventError(f"{field} must be a UUID, got {value!r}")


def utc_now() -> dt.datetime:
    """The current time in UTC, microsecond precision."""
    return dt.datetime.now(dt.UTC)


def _normalize_time(value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError as e:
            raise InvalidEventError(f"created_at is not an ISO 8601 time: {value!r}") from e
    if not isinstance(value, dt.datetime):
        raise InvalidEventError(f"created_at must be a datetime, got {value!r}")
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


class Event:
    """An immutable fact about one aggregate.

    ``id`` (global position) and ``version`` (position within the aggregate) are assigned
    by the store. Events are equal, and hash, by ``uuid``.
    """

    __slots__ = _FIELDS

    type_name: ClassVar[str | None] = None
    upcasters: ClassVar[tuple[Upcaster, ...]] = ()

    id: int | None
    uuid: str
    aggregate_id: str
    type: str
    body: dict[str, Any]
    version: int | None
    created_at: dt.datetime | None
    correlation_id: str | None
    causation_id: str | None
    metadata: dict[str, Any]

    def __init_subclass__(
        cls,
        *,
        type_name: str | None = None,
        aliases: tuple[str, ...] | list[str] = (),
        registry: EventRegistry | None = None,
        abstract: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if "upcasters" not in cls.__dict__:
            cls.upcasters = ()
        if abstract:
            cls.type_name = None
            return
        cls.type_name = type_name or type_name_for(cls.__name__)
        (registry or default_registry).register(cls, aliases=tuple(aliases))

    def __init__(
        self,
        *,
        aggregate_id: Any,
        body: Mapping[str, Any] | None = None,
        type: str | None = None,
        uuid: Any = None,
        id: int | None = None,
        version: int | None = None,
        created_at: Any = None,
        correlation_id: Any = None,
        causation_id: Any = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        own_type = type_name_of(self.__class__)
        if own_type is not None:
            if type is not None and type != own_type:
                raise InvalidEventError(
                    f"{self.__class__.__name__} has type {own_type!r}; "
                    f"change the class, not the type ({type!r})"
                )
            type = own_type
        if not type:
            raise InvalidEventError("an untyped Event needs a type name")
        if body is not None and not isinstance(body, Mapping):
            raise InvalidEventError(f"event body must be a mapping, got {body!r}")
        put = object.__setattr__
        put(self, "id", None if id is None else int(id))
        put(self, "uuid", str(uuid_mod.uuid4()) if uuid is None else normalize_uuid(uuid, "uuid"))
        put(self, "aggregate_id", normalize_uuid(aggregate_id, "aggregate_id"))
        put(self, "type", type)
        put(self, "body", dict(body) if body is not None else {})
        put(self, "version", None if version is None else int(version))
        put(self, "created_at", None if created_at is None else _normalize_time(created_at))
        put(
            self,
            "correlation_id",
            None if correlation_id is None else normalize_uuid(correlation_id, "correlation_id"),
        )
        put(
            self,
            "causation_id",
            None if causation_id is None else normalize_uuid(causation_id, "causation_id"),
        )
        put(self, "metadata", dict(metadata) if metadata else {})

    @classmethod
    def _trusted(cls: builtins.type[E], fields: tuple[Any, ...]) -> E:
        """Build an event from already-validated values in ``_FIELDS`` order (store read path)."""
        event: E = object.__new__(cls)
        put = object.__setattr__
        for name, value in zip(_FIELDS, fields, strict=True):
            put(event, name, value)
        return event

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; use replace()")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self.uuid == other.uuid

    def __hash__(self) -> int:
        return hash(self.uuid)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(id={self.id}, type={self.type!r}, "
            f"aggregate_id={self.aggregate_id!r}, version={self.version}, uuid={self.uuid!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unpickle_event, (type(self), tuple(getattr(self, f) for f in _FIELDS)))

    def to_dict(self) -> dict[str, Any]:
        """Every field as a dict; ``created_at`` stays a datetime."""
        return {name: getattr(self, name) for name in _FIELDS}

    def replace(
        self, *, event_class: builtins.type[Event] | None = None, **changes: Any
    ) -> Event:
        """A copy with some fields changed; ``event_class=`` changes the class (and so the type)."""
        unknown = set(changes) - set(_FIELDS)
        if unknown:
            raise InvalidEventError(f"unknown event field(s): {', '.join(sorted(unknown))}")
        fields = self.to_dict()
        cls = event_class or type(self)
        if event_class is not None and type_name_of(event_class) is not None:
            fields.pop("type")
        elif (
            type_name_of(cls) is not None
            and "type" in changes
            and changes["type"] != fields["type"]
        ):
            raise InvalidEventError("change a typed event's type by changing its class")
        fields.update(changes)
        return cls(**fields)

    @classmethod
    def upcaster(cls, func: Upcaster) -> Upcaster:
        """Decorator: register ``func`` to upgrade stored events of this class on every read.

        Upcasters of a class run in registration order; one may return an event of another
        class, whose own upcasters then run. Stored rows are never rewritten.
        """
        cls.upcasters = (*cls.upcasters, func)
        return func


def type_name_of(cls: type[Event]) -> str | None:
    """The type name a class declares, or None for the untyped base :class:`Event`."""
    return cls.__dict__.get("type_name") if cls is not Event else None


def _unpickle_event(cls: type[Event], fields: tuple[Any, ...]) -> Event:
    return cls._trusted(fields)


class EventRegistry:
    """Maps type names (and aliases) to event classes, and back."""

    def __init__(self) -> None:
        self._by_name: dict[str, type[Event]] = {}
        self._upcasters: dict[str, list[Upcaster]] = {}

    def register(self, cls: type[Event], *, aliases: tuple[str, ...] = ()) -> None:
        """Register ``cls`` under its type name and aliases; a name taken by another class fails."""
        name = type_name_of(cls)
        if name is None:
            raise InvalidEventError(f"{cls.__name__} has no type name")
        for key in (name, *aliases):
            if not _TYPE_NAME_RE.match(key):
                raise InvalidEventError(f"invalid event type name {key!r} on {cls.__name__}")
            existing = self._by_name.get(key)
            if existing is not None and _qualname(existing) != _qualname(cls):
                raise DuplicateEventTypeError(
                    f"event type {key!r} is already registered to {_qualname(existing)}; "
                    f"{_qualname(cls)} cannot take it"
                )
        for key in (name, *aliases):
            self._by_name[key] = cls

    def add_upcaster(self, type_name: str, func: Upcaster) -> None:
        """Upgrade stored events of ``type_name`` (typically an old, class-less name) on read."""
        self._upcasters.setdefault(type_name, []).append(func)

    def class_for(self, type_name: str) -> type[Event] | None:
        """The class registered for a type name or alias, or None."""
        return self._by_name.get(type_name)

    def require(self, type_name: str) -> type[Event]:
        """The class for ``type_name``; raises :class:`UnknownEventTypeError` when there is none."""
        cls = self._by_name.get(type_name)
        if cls is None:
            raise UnknownEventTypeError(type_name)
        return cls

    def names(self) -> list[str]:
        """Every canonical type name, sorted (aliases left out)."""
        return sorted({n for n, c in self._by_name.items() if type_name_of(c) == n})

    def is_known(self, type_name: str) -> bool:
        """True when the name or alias is registered."""
        return type_name in self._by_name

    def decode(self, fields: tuple[Any, ...]) -> Event:
        """Build the right event class from stored values (``_FIELDS`` order), then upcast it."""
        stored_type = fields[3]
        cls = self._by_name.get(stored_type)
        if cls is None:
            event: Event = Event._trusted(fields)
        else:
            own = cls.__dict__["type_name"]
            if own != stored_type:
                fields = (*fields[:3], own, *fields[4:])
            event = cls._trusted(fields)
        if self._upcasters or event.upcasters:
            event = self._upcast(event, stored_type)
        return event

    def _upcast(self, event: Event, stored_type: str) -> Event:
        for func in self._upcasters.get(stored_type, ()):
            event = func(event)
        if type(event) is Event and event.type != stored_type:
            cls = self._by_name.get(event.type)
            if cls is not None:
                event = event.replace(event_class=cls)
        seen: set[type[Event]] = set()
        while type(event).upcasters and type(event) not in seen:
            cls = type(event)
            seen.add(cls)
            for func in cls.upcasters:
                event = func(event)
        return event


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


default_registry = EventRegistry()
"""The registry event subclasses join unless they name another."""
