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
model dumped as JSON values (``model_dump(mode="json")``), so the stores keep JSON.
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

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from esctl_lib.errors import InvalidEventError
from esctl_lib.serialization import short_repr

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError
else:
    ValidationError = None  # pydantic's, set by install_body (no pydantic import here)

__all__ = ["body_model_of", "check_data", "install_body", "upcasting"]

_UNCHECKED: ContextVar[bool] = ContextVar("esctl_unchecked_bodies", default=False)
#: Where a typed event keeps its validated model (in the instance ``__dict__``).
_DATA = "_esctl_data"
_MAX_ERRORS = 3


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
    global ValidationError
    from pydantic import BaseModel  # loaded already: ``model`` is one
    from pydantic import ValidationError as loaded

    ValidationError = loaded  # for the except clauses here, without an import per event
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise InvalidEventError(
            f"body= on {cls.__name__} must be a pydantic model class, got {short_repr(model)}")
    cls.body_model = model  # type: ignore[attr-defined]
    if not hasattr(cls, "body_exclude_unset"):  # a class attribute: no failed lookup per event
        cls.body_exclude_unset = False  # type: ignore[attr-defined]
    cls.data = property(_data, doc="The body as its model (validated once, then kept).")  # type: ignore[attr-defined]
    if "__init__" not in cls.__dict__:
        cls.__init__ = _typed_init(cls)  # type: ignore[misc]
    if "replace" not in cls.__dict__:
        cls.replace = _typed_replace(cls)  # type: ignore[attr-defined]


def _typed_replace(owner: type) -> Any:
    base_replace = super(owner, owner).replace  # type: ignore[misc,arg-type]  # Event.replace

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
        data = getattr(self, "__dict__", {}).get(_DATA)
        if data is not None:
            _keep(copy, data)
        return copy

    replace.__qualname__ = f"{owner.__qualname__}.replace"
    return replace


def _typed_init(owner: type) -> Any:
    base_init = super(owner, owner).__init__  # type: ignore[misc,arg-type]  # Event.__init__

    def __init__(self: Any, *, body: Any = None, **fields: Any) -> None:
        cls = self.__class__
        model = cls.body_model
        if body.__class__ is model or isinstance(body, model):
            data = body
        elif body is None or isinstance(body, Mapping):
            if _UNCHECKED.get():  # an upcaster's intermediate shape: validated when read
                base_init(self, body=body, **fields)
                return
            data = _validate(model, body or {}, self.__class__.type_name)
        else:
            raise InvalidEventError(
                f"{self.__class__.type_name}: body must be a {model.__name__} or a mapping, "
                f"got {short_repr(body)}")
        # The serializer itself: model_dump's wrapper costs as much again (pydantic 2.14).
        body = model.__pydantic_serializer__.to_python(
            data, mode="json", exclude_unset=cls.body_exclude_unset)
        base_init(self, body=body, **fields)
        _keep(self, data)

    __init__.__qualname__ = f"{owner.__qualname__}.__init__"
    return __init__


def _validate(model: type[BaseModel], values: Mapping[str, Any], where: str) -> BaseModel:
    try:
        data: BaseModel = model.__pydantic_validator__.validate_python(values)
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
    try:  # noqa: SIM105 (contextlib.suppress costs a microsecond per event here)
        event.__dict__[_DATA] = data
    except AttributeError:  # a class with __slots__ only: validate on every read
        pass


def _data(event: Any) -> Any:
    try:
        return event.__dict__[_DATA]
    except (KeyError, AttributeError):
        pass
    data = check_data(event)
    _keep(event, data)
    return data


def check_data(event: Any, *, where: str | None = None) -> Any:
    """Validate a (stored) typed event's body against its model and return the model;
    raises :class:`InvalidEventError` naming the event (or ``where``) and the field."""
    model = event.__class__.body_model
    try:
        return model.model_validate(event.body)
    except ValidationError as e:
        if where is None:
            where = f"event {event.id} ({event.type}, uuid {event.uuid})"
        raise InvalidEventError(f"{where}: {describe(e)}") from None
