"""What event types an application registers (``esctl types``): classes, aliases,
upcasters, and each typed body's fields (see :mod:`esctl_lib.typed`)."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from typing import Any

from esctl_lib.events import EventRegistry, Upcaster
from esctl_lib.typed import body_model_of


@dataclass(frozen=True, slots=True)
class BodyField:
    """One field of a typed body: its name, its type as written, and whether it is required."""

    name: str
    type: str
    required: bool
    default: Any = None


@dataclass(frozen=True, slots=True)
class EventTypeInfo:
    """One registered event type."""

    name: str
    #: ``module.QualName`` of its class.
    event_class: str
    aliases: tuple[str, ...] = ()
    #: ``module.qualname`` of each upcaster: the class's own, then those added by name for
    #: the type or one of its aliases (registry upcasters).
    upcasters: tuple[str, ...] = ()
    #: ``module.QualName`` of the body model, None for an untyped (dict) body.
    body_model: str | None = None
    fields: tuple[BodyField, ...] = ()
    #: The body's JSON Schema (typed bodies only).
    json_schema: dict[str, Any] | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, the body as a JSON Schema (``esctl types --json``)."""
        return {"type": self.name, "class": self.event_class, "aliases": list(self.aliases),
                "upcasters": list(self.upcasters), "body_model": self.body_model,
                "body_schema": self.json_schema}


@dataclass(frozen=True, slots=True)
class TypesReport:
    """Every registered type, and the upcasters of stored names no class has."""

    types: tuple[EventTypeInfo, ...]
    #: Registry upcasters of names that are not a registered type or alias.
    orphan_upcasters: dict[str, tuple[str, ...]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (``esctl types --json``)."""
        return {"types": [t.to_dict() for t in self.types],
                "upcasters_by_stored_name": {k: list(v)
                                             for k, v in self.orphan_upcasters.items()}}


def event_types(registry: EventRegistry) -> TypesReport:
    """Describe every type registered in ``registry``, sorted by name."""
    by_name = registry.name_upcasters()
    infos = []
    claimed: set[str] = set()
    for name in registry.names():
        cls = registry.require(name)
        aliases = tuple(registry.aliases_of(name))
        claimed.update((name, *aliases))
        named = [f for n in (name, *aliases) for f in by_name.get(n, ())]
        model = body_model_of(cls)
        infos.append(EventTypeInfo(
            name=name,
            event_class=_qualname(cls),
            aliases=aliases,
            upcasters=tuple(_qualname(f) for f in (*cls.upcasters, *named)),
            body_model=None if model is None else _qualname(model),
            fields=() if model is None else _fields(model),
            json_schema=None if model is None else _schema(model),
        ))
    orphans = {n: tuple(_qualname(f) for f in fs) for n, fs in by_name.items()
               if n not in claimed}
    return TypesReport(tuple(infos), orphans)


def _schema(model: Any) -> dict[str, Any]:
    from pydantic.errors import PydanticUserError  # loaded already: ``model`` is a model

    try:
        schema: dict[str, Any] = model.model_json_schema()
    except PydanticUserError as e:  # a field type with no JSON Schema
        return {"error": str(e).splitlines()[0]}
    return schema


def _fields(model: Any) -> tuple[BodyField, ...]:
    out = []
    for name, info in model.model_fields.items():
        required = info.is_required()
        out.append(BodyField(name=name, type=_type_text(info.annotation), required=required,
                             default=None if required else info.get_default()))
    return tuple(out)


def _type_text(annotation: Any) -> str:
    """A type as written in a model (``date | None``, ``list[Item]``), metadata left out."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_text(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_text(a) for a in args)
    if annotation is type(None):
        return "None"
    if origin is typing.Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(_type_text(a) for a in args)}]" if args else name
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _qualname(obj: type | Upcaster) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"
