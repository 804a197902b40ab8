"""Typed event bodies: an event class may declare its body as a pydantic v2 model::

    class TodoAddedBody(BaseModel):
        title: str
        due_date: dt.date | None = None

    class TodoAdded(Event, body=TodoAddedBody):
        pass

    TodoAdded(aggregate_id=todo_id, body=TodoAddedBody(title="Buy milk"))
    TodoAdded(aggregate_id=todo_id, body={"title": "Buy milk"})   # validated the same way

The body is validated when the event is made (a bad one raises :class:`InvalidEventError`
naming the field: ``todo_added: body.title: field required``), and ``event.body`` is the
model dumped as JSON values (``model_dump(mode="json")``), so the stores keep JSON. The
dump is made once, as JSON text the store keeps as it is when the text shows it fits the
body rule (:func:`typed_body`); the dict is decoded from it when first asked for.
``event.data`` is the model: ``Decimal``, ``datetime``, ``UUID`` and nested models are
restored. A class that sets ``body_exclude_unset = True`` stores only the fields that were
set (an "only what changed" event); otherwise defaults are stored too. A model passed in
is kept as ``data`` (dumped once, never validated again), so make body
models frozen (``model_config = ConfigDict(frozen=True)``).

A stored event is validated when its ``data`` is first read, after the upcasters have run
(they may build events of older shapes: nothing is validated while they run). A stored
body that does not fit raises :class:`InvalidEventError` naming the event id and the field;
inside a processor that is a failure of that one event, retried and then parked like any
other poison event. ``event.body`` never validates, so ``tail``, ``export`` and the repair
tools still read such an event.

pydantic is imported only by applications that declare typed bodies (``import esctl_lib``
does not load it: the CLI starts fast).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from esctl_lib.errors import InvalidEventError
from esctl_lib.serialization import MAX_DEPTH, CheckedJSON, short_repr

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError
    from pydantic_core import PydanticSerializationError
else:  # pydantic's, set by install_body (no pydantic import here)
    ValidationError = PydanticSerializationError = None

__all__ = ["body_model_of", "check_data", "install_body", "typed_body", "upcasting"]

_UNCHECKED: ContextVar[bool] = ContextVar("esctl_unchecked_bodies", default=False)
#: Where a typed event keeps its validated model: after the ten fields of its ``_f``
#: tuple (no instance ``__dict__`` to make per event).
_DATA = 10
_put = object.__setattr__
_MAX_ERRORS = 3
_BODY = 4  # EventField.BODY (events imports this module)
#: Where a typed event class keeps what its model's JSON text must be checked for
#: (:func:`body_flags`).
_FLAGS = "_esctl_body_flags"
#: 19 digits in a row: maybe an integer of 2**63 or more (validate_body refuses those).
_LONG_DIGITS = re.compile(rb"[0-9]{19}").search
_DIGITS = b"0123456789"


@contextmanager
def upcasting() -> Iterator[None]:
    """While upcasters run, typed events are built without validating their bodies: an
    intermediate shape need not fit the model; the result is validated when read."""
    token = _UNCHECKED.set(True)
    try:
        yield
    finally:
        _UNCHECKED.reset(token)


def body_model_of(cls: type) -> type[BaseModel] | None:
    """The pydantic model a typed event class declares, or None for an untyped class."""
    model: type[BaseModel] | None = getattr(cls, "body_model", None)
    return model


def install_body(cls: type, model: Any) -> None:
    """Make ``cls`` (an Event subclass, from ``class X(Event, body=Model)``) typed."""
    global ValidationError, PydanticSerializationError
    from pydantic import BaseModel  # loaded already: ``model`` is one
    from pydantic import ValidationError as loaded
    from pydantic_core import PydanticSerializationError as loaded_ser

    ValidationError = loaded  # for the except clauses here, without an import per event
    PydanticSerializationError = loaded_ser  # type: ignore[misc]
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise InvalidEventError(
            f"body= on {cls.__name__} must be a pydantic model class, got {short_repr(model)}")
    cls.body_model = model  # type: ignore[attr-defined]
    setattr(cls, _FLAGS, body_flags(model))
    if not hasattr(cls, "body_exclude_unset"):  # a class attribute: no failed lookup per event
        cls.body_exclude_unset = False  # type: ignore[attr-defined]
    cls.data = property(_data, doc="The body as its model (validated once, then kept).")  # type: ignore[attr-defined]
    if "replace" not in cls.__dict__:
        cls.replace = _typed_replace(cls)  # type: ignore[attr-defined]


def _typed_replace(owner: type) -> Any:
    base_replace = super(owner, owner).replace  # type: ignore[arg-type]  # Event.replace

    def replace(self: Any, *, event_class: Any = None, **changes: Any) -> Any:
        """A copy with some fields changed (see ``Event.replace``); a copy that keeps the
        body and the class keeps the model too, unvalidated again (``Repository.save``
        stamping correlation ids costs no second validation)."""
        if event_class is not None or "body" in changes:
            return base_replace(self, event_class=event_class, **changes)
        token = _UNCHECKED.set(True)
        try:
            copy = base_replace(self, **changes)
        finally:
            _UNCHECKED.reset(token)
        if len(self._f) > _DATA:
            _keep(copy, self._f[_DATA])
        return copy

    replace.__qualname__ = f"{owner.__qualname__}.replace"
    return replace


def typed_body(cls: Any, model: Any, body: Any) -> tuple[Any, Any]:
    """What ``Event.__init__`` keeps for a typed event's ``body=``: (the stored body, the
    model, or None when not validated now). The model given, or validated from a mapping,
    is dumped once: to its JSON text, checked (a :class:`CheckedJSON`), when the text
    alone shows that :func:`~esctl_lib.serialization.validate_body` accepts it; otherwise
    to the JSON-mode dict, which the store checks (and refuses, naming the path).

    The text shows it when it has no backslash (or none starting ``\\u0000``), fewer than
    19 digits in all or no run of 19 (an integer of 2**63 or more), at most MAX_DEPTH
    ``{``/``[`` (so no deeper nesting), and, for a model with floats, no ``null`` (pydantic
    dumps a non-finite float as null) and no ``Infinity``/``NaN``; the checks a model's
    schema rules out are skipped (:func:`body_flags`). A lone surrogate fails the dump."""
    if body.__class__ is model or isinstance(body, model):
        data = body
    elif body.__class__ is dict or body is None or isinstance(body, Mapping):
        if _UNCHECKED.get():  # an upcaster's intermediate shape: validated when read
            return ({} if body is None else dict(body)), None
        data = _validate(model, body or {}, cls.type_name)
    elif body.__class__ is CheckedJSON:  # a copy (replace) of a typed event's body
        if _UNCHECKED.get():
            return body, None
        data = _validate_json(model, body, cls.type_name)
    else:
        raise InvalidEventError(
            f"{cls.type_name}: body must be a {model.__name__} or a mapping, "
            f"got {short_repr(body)}")
    serializer = model.__pydantic_serializer__
    try:
        # (no keyword when it is False: parsing one costs ~5 % of the dump)
        raw = (serializer.to_json(data, exclude_unset=True) if cls.body_exclude_unset
               else serializer.to_json(data))
    except PydanticSerializationError:
        raw = None
    if raw is not None:
        text = CheckedJSON(raw, "utf-8")
        if "\\" not in text or "\\u0000" not in text:
            floats, ints, deep = getattr(cls, _FLAGS)
            if ((not ints or len(raw) - len(raw.translate(None, _DIGITS)) < 19
                 or not _LONG_DIGITS(raw))
                    and (not deep or raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH)
                    and not (floats and ("null" in text or "Infinity" in text
                                         or "NaN" in text))):
                return text, data
    # The serializer itself: model_dump's wrapper costs as much again (pydantic 2.14).
    return serializer.to_python(data, mode="json", exclude_unset=cls.body_exclude_unset), data


#: Core-schema types whose JSON dump holds only strings, booleans and nulls.
_TEXT_TYPES = frozenset({
    "str", "bool", "none", "decimal", "date", "datetime", "time", "uuid", "url",
    "multi-host-url", "bytes", "missing-sentinel"})
#: Core-schema types that only hold other schemas (walked into).
_STRUCTURAL = frozenset({
    "model", "model-fields", "model-field", "typed-dict", "typed-dict-field", "dataclass",
    "dataclass-args", "dataclass-field", "computed-field", "list", "tuple", "set",
    "frozenset", "dict", "nullable", "default", "union", "tagged-union", "chain",
    "lax-or-strict", "json-or-python", "definitions", "definition-ref", "arguments"})
_CONTAINERS = frozenset({
    "model-fields", "typed-dict", "dataclass-args", "list", "tuple", "set", "frozenset",
    "dict"})


def _text_choice(kind: Any, node: dict[str, Any]) -> bool:
    """A literal of strings/booleans/None, or an enum of strings."""
    if kind == "literal":
        return all(v is None or isinstance(v, str | bool) for v in node.get("expected", ()))
    return bool(kind == "enum" and node.get("sub_type") == "str")


def body_flags(model: Any) -> tuple[bool, bool, bool]:
    """What :func:`dump_body` must look for in a model's JSON text, from its core schema:
    (floats: a non-finite float dumps as null; ints: an integer may be too large; deep:
    the nesting may exceed MAX_DEPTH). Anything it does not know sets all three."""
    floats = ints = deep = False
    containers = 0
    seen: set[int] = set()
    stack: list[Any] = [model.__pydantic_core_schema__]
    while stack:
        node = stack.pop()
        if isinstance(node, list | tuple):
            stack.extend(node)
            continue
        if not isinstance(node, dict) or id(node) in seen:
            continue
        seen.add(id(node))
        kind = node.get("type")
        if not isinstance(kind, str):  # a mapping of schemas (a model's fields)
            stack.extend(node.values())
            continue
        if kind in _STRUCTURAL:
            containers += kind in _CONTAINERS
            deep = deep or kind in ("definitions", "definition-ref")
        elif kind == "int":
            ints = True
        elif kind in ("float", "timedelta"):
            floats = True
        elif not (kind in _TEXT_TYPES or _text_choice(kind, node)):
            return True, True, True
        ser = node.get("serialization")
        if isinstance(ser, dict) and ser.get("type") not in ("format", "to-string", None):
            return True, True, True
        stack.extend(v for k, v in node.items() if k not in ("metadata", "serialization",
                                                            "config", "cls", "ref"))
    return floats, ints, deep or containers * 2 >= MAX_DEPTH


def _validate(model: type[BaseModel], values: Mapping[str, Any], where: str) -> BaseModel:
    try:
        data: BaseModel = model.__pydantic_validator__.validate_python(values)
    except ValidationError as e:
        raise InvalidEventError(f"{where}: {describe(e)}") from None
    return data


def _validate_json(model: type[BaseModel], text: str, where: str) -> BaseModel:
    try:
        data: BaseModel = model.__pydantic_validator__.validate_json(text)
    except ValidationError as e:
        raise InvalidEventError(f"{where}: {describe(e)}") from None
    return data


def describe(error: ValidationError) -> str:
    """A pydantic validation error as one line: ``body.title: field required``."""
    parts = []
    for item in error.errors()[:_MAX_ERRORS]:
        loc = ".".join(str(p) for p in ("body", *item["loc"]))
        msg = str(item["msg"])
        parts.append(f"{loc}: {msg[:1].lower()}{msg[1:]}")
    more = error.error_count() - _MAX_ERRORS
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _keep(event: Any, data: Any) -> None:
    _put(event, "_f", (*event._f[:_DATA], data))


def _data(event: Any) -> Any:
    fields = event._f
    if len(fields) > _DATA:
        return fields[_DATA]
    data = check_data(event)
    _keep(event, data)  # after check_data: it may have decoded the body into ``_f``
    return data


def check_data(event: Any, *, where: str | None = None) -> Any:
    """Validate a (stored) typed event's body against its model and return the model;
    raises :class:`InvalidEventError` naming the event (or ``where``) and the field."""
    model = event.__class__.body_model
    raw = event._f[_BODY]
    try:
        if raw.__class__ is str or raw.__class__ is CheckedJSON:
            # JSON text as read: parsed and validated in one pass by pydantic-core (the
            # body dict is decoded only if asked for). Text that is not JSON goes the
            # ordinary way, so that it fails as the store's error, as ``event.body`` does.
            try:
                return model.__pydantic_validator__.validate_json(raw)
            except ValidationError as e:
                if e.errors()[0]["type"] != "json_invalid":
                    raise
        return model.__pydantic_validator__.validate_python(event.body)
    except ValidationError as e:
        if where is None:
            where = f"event {event.id} ({event.type}, uuid {event.uuid})"
        raise InvalidEventError(f"{where}: {describe(e)}") from None
