"""Aggregates: consistency boundaries rebuilt by folding their events.

::

    class Todo(Aggregate):
        @handles(TodoAdded)
        def _added(self, event: TodoAdded) -> None:
            self.title = event.body["title"]

        def add(self, title: str) -> None:
            self.apply(TodoAdded(aggregate_id=self.id, body={"title": title}))
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Literal, TypeVar

from esctl_lib.errors import InvalidEventError, UnknownEventError
from esctl_lib.events import Event, normalize_uuid, type_name_of

#: Instance attributes of every aggregate that a snapshot does not hold: the repository
#: restores ``id`` and ``version`` itself, and a loaded aggregate has no changes.
FRAMEWORK_FIELDS = frozenset({"id", "version", "changes"})

F = TypeVar("F", bound=Callable[..., Any])
UnknownEventPolicy = Literal["raise", "ignore"] | Callable[["Aggregate", Event], None]


def handles(*event_classes: type[Event]) -> Callable[[F], F]:
    """Mark a method as the handler of one or more event classes."""
    if not event_classes:
        raise TypeError("handles() needs at least one event class")
    names = []
    for cls in event_classes:
        name = type_name_of(cls)
        if name is None:
            raise TypeError(f"{cls!r} is not a typed event class")
        names.append(name)

    def mark(func: F) -> F:
        existing = getattr(func, "__esctl_handles__", ())
        func.__esctl_handles__ = (*existing, *names)  # type: ignore[attr-defined]
        return func

    return mark


def collect_handlers(cls: type) -> dict[str, list[str]]:
    """Map type names to the handler method names of ``cls`` and its bases (bases first)."""
    table: dict[str, list[str]] = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            for name in getattr(value, "__esctl_handles__", ()):
                methods = table.setdefault(name, [])
                if attr not in methods:
                    methods.append(attr)
    return table


class Aggregate:
    """Base class of aggregates. Subclasses declare handlers with :func:`handles`.

    ``version`` counts every event applied, history and new alike; ``changes`` holds the
    new events not yet saved. ``on_unknown_event`` says what to do with an event that has
    no handler: ``"raise"`` (default), ``"ignore"``, or a callable ``(aggregate, event)``:
    a plain function (``on_unknown_event = log_it``), a method defined under that name
    (``def on_unknown_event(self, event)``), or a ``staticmethod`` of two arguments.

    **Snapshots.** ``snapshot_every = N`` makes :class:`~esctl_lib.Repository` keep a
    snapshot of the folded state each time a save crosses a multiple of N events, and load
    from the newest one (``[snapshots] every`` in ``eventsourcery.toml`` overrides N per
    class). Bump ``snapshot_version`` whenever the state's shape changes: snapshots of
    another version are ignored. The state is :meth:`snapshot_state`, restored by
    :meth:`restore_snapshot`; by default the instance ``__dict__`` minus ``id``,
    ``version`` and ``changes``, which must survive the body encoder unchanged (JSON
    types only: str, int, float, bool, None, lists and str-keyed dicts of them). Override
    both methods for anything else (sets, dates, Decimals, objects).
    """

    on_unknown_event: ClassVar[UnknownEventPolicy] = "raise"
    #: Snapshot every N events (None or 0: never).
    snapshot_every: ClassVar[int | None] = None
    #: The shape of this class's snapshot state; snapshots of another version are ignored.
    snapshot_version: ClassVar[int] = 1
    _handlers: ClassVar[dict[str, list[str]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = collect_handlers(cls)

    def __init__(self, aggregate_id: Any, events: Iterable[Event] = ()) -> None:
        self.id = normalize_uuid(aggregate_id, "aggregate_id")
        self.version = 0
        self.changes: list[Event] = []
        for event in events:
            self._mutate(event)

    def apply(self, event: Event) -> None:
        """Record a new event: run its handler, bump the version, keep it in ``changes``."""
        if event.aggregate_id != self.id:
            raise InvalidEventError(
                f"event for aggregate {event.aggregate_id} applied to aggregate {self.id}"
            )
        self._mutate(event)
        self.changes.append(event)

    def snapshot_state(self) -> dict[str, Any]:
        """The state a snapshot keeps: a mapping the body encoder can encode. Default: the
        instance ``__dict__`` without ``id``, ``version`` and ``changes``."""
        return {k: v for k, v in vars(self).items() if k not in FRAMEWORK_FIELDS}

    def restore_snapshot(self, state: dict[str, Any]) -> None:
        """Take back a state :meth:`snapshot_state` gave, as decoded from JSON, on an
        aggregate built with no events. Default: update the instance ``__dict__``."""
        self.__dict__.update(state)

    @classmethod
    def snapshot_type(cls) -> str:
        """The name snapshots of this class are kept under: ``"module:QualName"``."""
        return f"{cls.__module__}:{cls.__qualname__}"

    def _fold(self, events: Iterable[Event]) -> None:
        for event in events:
            self._mutate(event)

    def clear_changes(self) -> None:
        """Forget the pending changes (after they were saved)."""
        self.changes = []

    def _mutate(self, event: Event) -> None:
        methods = self._handlers.get(event.type)
        if methods:
            for name in methods:
                getattr(self, name)(event)
        else:
            self._unknown(event)
        self.version += 1

    def _unknown(self, event: Event) -> None:
        # Read the policy unbound: a plain function set as a class attribute would
        # otherwise become a method and receive the aggregate twice.
        policy = inspect.getattr_static(self, "on_unknown_event")
        if isinstance(policy, staticmethod):
            policy = policy.__func__
        elif isinstance(policy, classmethod):
            policy = policy.__get__(None, type(self))
        if isinstance(policy, str):
            if policy == "ignore":
                return
            if policy == "raise":
                raise UnknownEventError(
                    f"{type(self).__name__} has no handler for event type {event.type!r}"
                )
        if not callable(policy):
            raise TypeError(
                f"{type(self).__name__}.on_unknown_event must be 'raise', 'ignore' or a "
                f"callable (aggregate, event), not {policy!r}"
            )
        policy(self, event)
