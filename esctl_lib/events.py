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
import json
import os
import re
import time
import uuid as uuid_mod
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from esctl_lib.errors import (
    DuplicateEventTypeError,
    InvalidEventError,
    StoreError,
    UnknownEventTypeError,
)
from esctl_lib.serialization import CheckedJSON, short_repr
from esctl_lib.typed import install_body, typed_body, upcasting

if TYPE_CHECKING:
    from pydantic import BaseModel  # a typed event's body may be its model (esctl_lib.typed)

E = TypeVar("E", bound="Event")
Upcaster = Callable[["Event"], "Event"]

EVENT_FIELDS = (
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


class EventField:
    """Where each field sits in an event's field tuple (``EVENT_FIELDS`` order), as plain
    ints: the stores build and read such tuples, and index them by these names."""

    ID = 0
    UUID = 1
    AGGREGATE_ID = 2
    TYPE = 3
    BODY = 4
    VERSION = 5
    CREATED_AT = 6
    CORRELATION_ID = 7
    CAUSATION_ID = 8
    METADATA = 9


assert tuple(getattr(EventField, f.upper()) for f in EVENT_FIELDS) == tuple(range(10))
_BODY = EventField.BODY
_METADATA = EventField.METADATA
_CREATED_AT = EventField.CREATED_AT
_TYPE = EventField.TYPE
_json_loads = json.loads
# The C scanner inside json.loads (an attribute of every JSONDecoder, untyped in typeshed).
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_fromiso = dt.datetime.fromisoformat
#: What a type name (or alias) may be: a lower-case letter, then up to 99 lower-case
#: letters, digits, ``_``, ``.``, ``/`` or ``-`` (no spaces, control characters or newlines).
TYPE_NAME_PATTERN = r"[a-z][a-z0-9_./-]{0,99}"
_TYPE_NAME_RE = re.compile(TYPE_NAME_PATTERN)


def type_name_for(class_name: str) -> str:
    """Derive a type name from a class name: ``TodoAdded`` → ``todo_added``, ``SMSSent`` → ``sms_sent``."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", class_name)
    name = re.sub(r"([a-z\d])([A-Z])", r"\1_\2", name)
    return name.replace("-", "_").lower()


def check_type_name(name: Any, *, owner: str | None = None) -> str:
    """``name`` when it is a valid type name (see :data:`TYPE_NAME_PATTERN`); else raise
    :class:`InvalidEventError` (naming ``owner``, the class, when given).

    Checked when a class registers its names, when a store appends an untyped event, and
    when an event is imported. Untyped events read back keep whatever name is stored."""
    if isinstance(name, str) and _TYPE_NAME_RE.fullmatch(name):
        return name
    where = f" on {owner}" if owner else ""
    raise InvalidEventError(
        f"invalid event type name {short_repr(name)}{where}: it must match {TYPE_NAME_PATTERN} "
        "(lower case, at most 100 characters)"
    )


#: A canonical uuid string (lower-case hex, 8-4-4-4-12): returned as it is, unparsed.
_CANONICAL_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch
_urandom = os.urandom
_time_ns = time.time_ns
#: The random parts of uuids made ahead, 256 at a time from one ``os.urandom`` call; a
#: forked child empties it, so parent and child never hand out the same one.
_uuid_tails: list[str] = []
os.register_at_fork(after_in_child=_uuid_tails.clear)


_TAILS_PER_FILL = 256
#: Masks that set the version (7) and variant (RFC 4122 / 9562) bits of every 10-byte tail
#: in one block, as integers: two big-int operations instead of a Python loop.
_KEEP_BITS = int.from_bytes(bytes.fromhex("0fff3fffffffffffffff") * _TAILS_PER_FILL, "big")
_SET_BITS = int.from_bytes(bytes.fromhex("70008000000000000000") * _TAILS_PER_FILL, "big")
_concat = str.__add__


def _fill_uuid_tails() -> None:
    size = 10 * _TAILS_PER_FILL
    bits = (int.from_bytes(_urandom(size), "big") & _KEEP_BITS) | _SET_BITS
    # Hex in groups of 4 digits, 5 groups a tail "vxxx-yxxx-xxxxxxxxxxxx", joined by C
    # functions mapped over the groups (no bytecode per tail).
    g = bits.to_bytes(size, "big").hex("-", 2).split("-")
    last = map(_concat, map(_concat, g[2::5], g[3::5]), g[4::5])
    _uuid_tails.extend(map("-".join, zip(g[0::5], g[1::5], last, strict=True)))


#: (the millisecond, the uuid's first 14 characters for it): one tuple, replaced whole.
_ms_prefix: tuple[int, str] = (-1, "")


def new_uuid() -> str:
    """A new event uuid: a canonical UUIDv7 string (RFC 9562: 48 bits of Unix time in
    milliseconds, then 74 random bits).

    Time first, so new uuids land at the right-hand edge of the stores' uuid indexes
    instead of on a random page each (one page written per commit, not one per event).
    The random bits come 256 uuids at a time from one ``os.urandom`` call; ``list.pop``
    is atomic, so no two threads get the same ones."""
    global _ms_prefix
    try:
        tail = _uuid_tails.pop()
    except IndexError:
        _fill_uuid_tails()
        tail = _uuid_tails.pop()
    now = _time_ns() // 1_000_000
    ms, prefix = _ms_prefix
    if ms != now:  # the time part is formatted once a millisecond
        hexed = f"{now:012x}"
        prefix = f"{hexed[:8]}-{hexed[8:]}-"
        _ms_prefix = (now, prefix)
    return prefix + tail


#: Canonical uuid strings seen lately (an application's aggregate ids): a dict lookup
#: instead of the regex. Cleared when full; only strings the regex accepted go in.
_canonical_seen: dict[str, None] = {}
_SEEN_MAX = 4096


def normalize_uuid(value: Any, field: str) -> str:
    """Return ``value`` as a canonical lower-case UUID string, or raise :class:`InvalidEventError`."""
    if value.__class__ is str:
        if value in _canonical_seen:
            return value
        if _CANONICAL_UUID(value):  # the common case (an aggregate's own id)
            if len(_canonical_seen) >= _SEEN_MAX:
                _canonical_seen.clear()
            _canonical_seen[value] = None
            return value
    if isinstance(value, uuid_mod.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid_mod.UUID(value))
        except ValueError:
            pass
    raise InvalidEventError(f"{field} must be a UUID, got {short_repr(value)}")


def utc_now() -> dt.datetime:
    """The current time in UTC, microsecond precision."""
    return dt.datetime.now(dt.UTC)


#: (the second, its text up to the seconds): one tuple, replaced whole.
_second_prefix: tuple[int, str] = (-1, "")


def utc_stamp() -> str:
    """The current time in UTC as ``utc_now().isoformat(timespec="microseconds")`` gives
    it (``2026-12-02T01:40:12.123456+00:00``), without making the datetime: the date and
    time of day are formatted once a second. What the SQLite append stores; the event
    it returns parses the text only if asked for its ``created_at``."""
    global _second_prefix
    micros = _time_ns() // 1000
    second, fraction = divmod(micros, 1_000_000)
    cached, prefix = _second_prefix
    if cached != second:
        prefix = dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _second_prefix = (second, prefix)
    return f"{prefix}{fraction:06d}+00:00"


def _normalize_time(value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError as e:
            raise InvalidEventError(
                f"created_at is not an ISO 8601 time: {short_repr(value)}") from e
    if not isinstance(value, dt.datetime):
        raise InvalidEventError(f"created_at must be a datetime, got {short_repr(value)}")
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError as e:  # e.g. 0001-01-01 00:00 at +01:00
        raise InvalidEventError(f"created_at is out of range in UTC: {value.isoformat()}") from e


def _field(index: int, doc: str) -> Any:
    """A read-only property for one field of an event's ``_f`` tuple."""
    return property(lambda self: self._f[index], doc=doc)


def _loads(text: str) -> Any:
    """``json.loads`` for the stores' own compact JSON, at half the cost: straight to the
    C scanner, and through ``json.loads`` (whitespace, errors) whenever it does not fit.

    Stored text this library did not write may still fail (not JSON, nested too deeply for
    the parser, an integer of more than 4300 digits): that is :class:`StoreError`."""
    try:
        try:
            value, end = _scan_json(text, 0)
        except StopIteration:
            return _json_loads(text)
        if end != len(text):
            return _json_loads(text)
        return value
    except RecursionError as e:
        raise StoreError("a stored body or metadata is nested too deeply to read") from e
    except ValueError as e:  # JSONDecodeError, or an integer too long to convert
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise StoreError(f"a stored body or metadata is not readable JSON: {reason}") from e


#: The stores' JSON decoding (the C scanner first): for text this library wrote.
load_json = _loads


def _created_at(self: Event) -> dt.datetime | None:
    value = self._f[_CREATED_AT]
    return _fromiso(value) if value.__class__ is str else value


class Event:
    """An immutable fact about one aggregate.

    ``id`` (global position) and ``version`` (position within the aggregate) are assigned
    by the store. Events are equal, and hash, by ``uuid``.
    """

    # Every field lives in one tuple (``_f``, in ``EVENT_FIELDS`` order; a typed event's
    # model may follow, see esctl_lib.typed) read through properties,
    # so the store's read path builds an event with a single slot write. A body or metadata
    # read as JSON text is decoded on first access, and the tuple replaced by one holding it.
    __slots__ = ("_f",)

    type_name: ClassVar[str | None] = None
    upcasters: ClassVar[tuple[Upcaster, ...]] = ()
    #: The pydantic model of a typed event's body (``class X(Event, body=Model)``, see
    #: :mod:`esctl_lib.typed`); None for an untyped event, whose body is a plain dict.
    body_model: ClassVar[Any] = None

    _f: tuple[Any, ...]

    if TYPE_CHECKING:
        id: int | None
        uuid: str
        aggregate_id: str
        type: str
        version: int | None
        created_at: dt.datetime | None
        correlation_id: str | None
        causation_id: str | None
    else:
        id = _field(EventField.ID, doc="Global position, assigned by the store.")
        uuid = _field(EventField.UUID, doc="Unique id (lower-case UUID).")
        aggregate_id = _field(EventField.AGGREGATE_ID, doc="The aggregate's id (lower-case UUID).")
        type = _field(EventField.TYPE, doc="The type name, e.g. ``todo_added``.")
        version = _field(EventField.VERSION, doc="Position within the aggregate, from 1.")
        created_at = property(_created_at, doc="When it happened (UTC).")
        correlation_id = _field(EventField.CORRELATION_ID, doc="The conversation it belongs to.")
        causation_id = _field(EventField.CAUSATION_ID,
                              doc="The uuid of the event that caused it.")

    def __init_subclass__(
        cls,
        *,
        type_name: str | None = None,
        aliases: tuple[str, ...] | list[str] = (),
        registry: EventRegistry | None = None,
        abstract: bool = False,
        body: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if "upcasters" not in cls.__dict__:
            cls.upcasters = ()
        if body is not None:
            install_body(cls, body)  # typed body (esctl_lib.typed); untyped classes skip it
        if abstract:
            cls.type_name = None
            return
        cls.type_name = type_name or type_name_for(cls.__name__)
        (registry or default_registry).register(cls, aliases=tuple(aliases))

    def __init__(
        self,
        *,
        aggregate_id: Any,
        body: Mapping[str, Any] | BaseModel | None = None,
        type: str | None = None,
        uuid: Any = None,
        id: int | None = None,
        version: int | None = None,
        created_at: Any = None,
        correlation_id: Any = None,
        causation_id: Any = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        cls = self.__class__
        own_type = type_name_of(cls)
        if own_type is not None:
            if type is not None and type != own_type:
                raise InvalidEventError(
                    f"{self.__class__.__name__} has type {own_type!r}; "
                    f"change the class, not the type ({type!r})"
                )
            type = own_type
        if not type:
            raise InvalidEventError("an untyped Event needs a type name")
        body_dict: Any
        model = cls.body_model
        data = None
        if model is not None:  # a typed body: validated and dumped (esctl_lib.typed)
            body_dict, data = typed_body(cls, model, body)
        elif body.__class__ is dict:  # the common case, without the ABC check
            body_dict = dict(body)
        elif body.__class__ is CheckedJSON:  # type: ignore[comparison-overlap]  # a typed dump
            body_dict = body
        elif body is None:
            body_dict = {}
        elif isinstance(body, Mapping):
            body_dict = dict(body)
        else:
            raise InvalidEventError(f"event body must be a mapping, got {short_repr(body)}")
        meta_dict = dict(metadata) if metadata else {}
        fields = (
            None if id is None else int(id),
            new_uuid() if uuid is None else normalize_uuid(uuid, "uuid"),
            normalize_uuid(aggregate_id, "aggregate_id"),
            type,
            body_dict,
            None if version is None else int(version),
            None if created_at is None else _normalize_time(created_at),
            None if correlation_id is None else normalize_uuid(correlation_id, "correlation_id"),
            None if causation_id is None else normalize_uuid(causation_id, "causation_id"),
            meta_dict,
        )
        # A typed event keeps its model after the fields (esctl_lib.typed): no __dict__.
        _set_fields(self, fields if data is None else (*fields, data))

    @classmethod
    def from_stored(
        cls: builtins.type[E],
        id: int | None,
        uuid: str,
        aggregate_id: str,
        type: str,
        body: dict[str, Any] | str,
        version: int | None,
        created_at: dt.datetime | str | None,
        correlation_id: str | None,
        causation_id: str | None,
        metadata: dict[str, Any] | str | None,
    ) -> E:
        """An event from values a store (or an import) has already checked, without
        checking them again: canonical lower-case uuids, a UTC ``created_at``.

        ``body`` and ``metadata`` may be JSON text (metadata None for none), decoded on
        first access, so handlers that never look at a body never pay for it;
        ``created_at`` may be ISO 8601 text. The class is taken as given: no registry
        lookup and no upcasting (:meth:`EventRegistry.decode` does both).
        """
        event: E = object.__new__(cls)
        _set_fields(event, (id, uuid, aggregate_id, type, body, version, created_at,
                            correlation_id, causation_id, metadata))
        return event

    @property
    def body(self) -> dict[str, Any]:
        """The event's data: a dict with string keys and JSON values."""
        fields = self._f
        raw: Any = fields[_BODY]
        cls = raw.__class__
        if cls is not str and cls is not CheckedJSON:
            decoded: dict[str, Any] = raw
            return decoded
        body: dict[str, Any] = _loads(raw)
        _set_fields(self, (*fields[:_BODY], body, *fields[_BODY + 1:]))
        return body

    @property
    def data(self) -> Any:
        """The body as its model for a typed event (:mod:`esctl_lib.typed`): ``event.data.title``.
        For an untyped event, the body dict itself."""
        return self.body

    @property
    def metadata(self) -> dict[str, Any]:
        """Free-form data about the event (tenant, user, trace ids ...)."""
        fields = self._f
        raw: Any = fields[_METADATA]
        if raw.__class__ is dict:
            decoded: dict[str, Any] = raw
            return decoded
        meta: dict[str, Any] = (_loads(raw) if raw.__class__ is str else raw) or {}
        _set_fields(self, (*fields[:_METADATA], meta, *fields[_METADATA + 1:]))
        return meta

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
        return (_unpickle_event, (type(self), tuple(getattr(self, f) for f in EVENT_FIELDS)))

    def to_dict(self) -> dict[str, Any]:
        """Every field as a dict; ``created_at`` stays a datetime."""
        return {name: getattr(self, name) for name in EVENT_FIELDS}

    def replace(
        self, *, event_class: builtins.type[Event] | None = None, **changes: Any
    ) -> Event:
        """A copy with some fields changed; ``event_class=`` changes the class (and so the type)."""
        unknown = set(changes) - set(EVENT_FIELDS)
        if unknown:
            raise InvalidEventError(f"unknown event field(s): {', '.join(sorted(unknown))}")
        # The stored values as they are (a typed body's checked JSON text stays text;
        # ``created_at`` text is parsed by __init__); body or metadata read as JSON text
        # from a store is decoded, as __init__ takes only a mapping there.
        f = self._f
        fields = dict(zip(EVENT_FIELDS, f[:10], strict=True))
        if f[_BODY].__class__ is str:
            fields["body"] = self.body
        if f[_METADATA].__class__ is str:
            fields["metadata"] = self.metadata
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


_set_fields = Event.__dict__["_f"].__set__


def type_name_of(cls: type[Event]) -> str | None:
    """The type name a class declares, or None for the untyped base :class:`Event`."""
    return cls.__dict__.get("type_name") if cls is not Event else None


def _unpickle_event(cls: type[Event], fields: tuple[Any, ...]) -> Event:
    return cls.from_stored(*fields)


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
            check_type_name(key, owner=cls.__name__)
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

    def aliases_of(self, type_name: str) -> list[str]:
        """The aliases of a registered type name (its other names), sorted."""
        cls = self._by_name.get(type_name)
        return sorted(n for n, c in self._by_name.items() if c is cls and n != type_name)

    def name_upcasters(self) -> dict[str, tuple[Upcaster, ...]]:
        """The upcasters added by stored type name (:meth:`add_upcaster`)."""
        return {name: tuple(funcs) for name, funcs in sorted(self._upcasters.items())}

    def is_known(self, type_name: str) -> bool:
        """True when the name or alias is registered."""
        return type_name in self._by_name

    def stored_names(self, type_names: Collection[str]) -> set[str]:
        """Every stored type name that may read back as one of ``type_names``.

        That is each name, its aliases, every name of a class with upcasters, and every
        name a registry upcaster starts from (an upcaster may change the type, so a reader
        filtering on types must read such events to be sure).
        """
        wanted = set(type_names)
        names = set(wanted)
        for stored, cls in self._by_name.items():
            if cls.__dict__.get("type_name") in wanted or cls.upcasters:
                names.add(stored)
        names.update(self._upcasters)
        return names

    def decode(self, fields: tuple[Any, ...]) -> Event:
        """Build the right event class from stored values (``EVENT_FIELDS`` order), then upcast it.

        ``body`` and ``metadata`` may be JSON text, ``created_at`` ISO 8601 text.
        """
        return self.decode_many((fields,))[0]

    def decode_many(self, rows: Iterable[tuple[Any, ...]]) -> list[Event]:
        """:meth:`decode` for many stored rows at once (the stores' read path)."""
        by_name = self._by_name
        new = object.__new__
        set_fields = _set_fields
        registry_upcasts = bool(self._upcasters)
        out: list[Event] = []
        append = out.append
        for fields in rows:
            stored_type = fields[_TYPE]
            cls = by_name.get(stored_type, Event)
            if cls is not Event:
                own = cls.type_name
                if own != stored_type:
                    fields = (*fields[:_TYPE], own, *fields[_TYPE + 1:])
            event = new(cls)
            set_fields(event, fields)
            if registry_upcasts or cls.upcasters:
                event = self._upcast(event, stored_type)
            append(event)
        return out

    def _upcast(self, event: Event, stored_type: str) -> Event:
        with upcasting():  # typed bodies are validated after the upcasters, when read
            return self._run_upcasters(event, stored_type)

    def _run_upcasters(self, event: Event, stored_type: str) -> Event:
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
