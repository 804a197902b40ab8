"""OpenTelemetry spans around command handling and event handling (the ``otel`` extra).

With ``opentelemetry-api`` installed (``pip install 'esctl[otel]'``), esctl opens a span
for each :meth:`Repository.save <esctl_lib.repository.Repository.save>` (``esctl.save
<Aggregate>``) and one for each handler a processor runs on an event (``esctl.handle
<event type>``), under the tracer ``esctl``. Each carries the event's correlation and
causation ids (``esctl.correlation_id``, ``esctl.causation_id``), so a trace backend can
follow a command through the events it caused. The application configures the SDK and its
exporter as usual. Until it sets a tracer provider, handlers run unwrapped (a processor
checks :func:`recording` once per batch: the API's no-op spans cost about 10 µs per
handled event); without ``opentelemetry-api`` nothing is wrapped at all: no cost.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from esctl_lib.events import Event

F = TypeVar("F", bound=Callable[..., Any])
TRACER = "esctl"
_MISSING = object()
_tracer_module: Any = _MISSING


def _trace() -> Any:
    """``opentelemetry.trace``, or None when the API is not installed."""
    global _tracer_module
    if _tracer_module is _MISSING:
        try:
            from opentelemetry import trace as found
        except ImportError:
            found = None  # type: ignore[assignment]
        _tracer_module = found
    return _tracer_module


def enabled() -> bool:
    """True when opentelemetry-api is installed (spans are then made)."""
    return _trace() is not None


def recording() -> bool:
    """True when spans are recorded: the API is installed and a tracer provider is set
    (not the API's default proxy, which makes non-recording spans until one is)."""
    trace = _trace()
    if trace is None:
        return False
    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def _ids(attributes: dict[str, Any], correlation: Any, causation: Any) -> None:
    if correlation is not None:
        attributes["esctl.correlation_id"] = str(correlation)
    if causation is not None:
        attributes["esctl.causation_id"] = str(causation)


def traced_save(save: F) -> F:
    """Decorate ``Repository.save``: a span per save that has changes to append."""

    @functools.wraps(save)
    def wrapper(repository: Any, aggregate: Any, *args: Any, **kwargs: Any) -> Any:
        changes = getattr(aggregate, "changes", None)
        # no span while no tracer provider is set: a no-op span cost ~30 µs a save
        if not changes or not recording():
            return save(repository, aggregate, *args, **kwargs)
        trace = _trace()
        first = changes[0]
        attributes: dict[str, Any] = {
            "esctl.aggregate_type": type(aggregate).__name__,
            "esctl.aggregate_id": str(aggregate.id),
            "esctl.events": len(changes),
            "esctl.event_types": [e.type for e in changes],
        }
        _ids(attributes, kwargs.get("correlation_id") or first.correlation_id,
             kwargs.get("causation_id") or first.causation_id)
        tracer = trace.get_tracer(TRACER)
        with tracer.start_as_current_span(f"esctl.save {type(aggregate).__name__}",
                                          attributes=attributes) as span:
            stored = save(repository, aggregate, *args, **kwargs)
            if stored and stored[-1].id is not None:
                span.set_attribute("esctl.position", stored[-1].id)
            return stored

    return wrapper  # type: ignore[return-value]


def trace_dispatch(processor: Any, table: Mapping[str, tuple[Callable[..., Any], ...]]
                   ) -> Any:
    """A processor's dispatch table (and its catch-all fallback, in place) with each
    handler in a span; both unchanged without the API."""
    if _trace() is None:
        return table
    name = processor.name
    fallback = processor.__dict__.get("_fallback") or ()
    processor.__dict__["_fallback"] = tuple(_traced_handler(name, h) for h in fallback)
    return {type_name: tuple(_traced_handler(name, h) for h in handlers)
            for type_name, handlers in table.items()}


def _traced_handler(processor: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    name = getattr(handler, "__name__", "handler")

    @functools.wraps(handler)
    def wrapper(event: Event, tx: Any) -> Any:
        attributes: dict[str, Any] = {
            "esctl.processor": processor, "esctl.handler": name,
            "esctl.event_type": event.type, "esctl.event_uuid": str(event.uuid),
            "esctl.aggregate_id": str(event.aggregate_id),
        }
        if event.id is not None:
            attributes["esctl.position"] = event.id
        _ids(attributes, event.correlation_id, event.causation_id)
        tracer = _trace().get_tracer(TRACER)
        with tracer.start_as_current_span(f"esctl.handle {event.type}",
                                          attributes=attributes):
            return handler(event, tx)

    return wrapper
