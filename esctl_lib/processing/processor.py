"""Event stream processors: a stable name, handlers per event class, owned tables.

::

    class OutstandingTodos(Projector):
        tables = {"outstanding_todos": "CREATE TABLE IF NOT EXISTS outstanding_todos "
                                       "(todo_id TEXT PRIMARY KEY, title TEXT)"}

        @handles(TodoAdded)
        def _added(self, event: Event, tx: BatchTransaction) -> None:
            tx.upsert("outstanding_todos", {"todo_id": event.aggregate_id,
                                            "title": event.body["title"]}, key=("todo_id",))

A handler takes ``(event, tx)``: ``tx`` is the transaction of the batch, in which the
processor's rows, the events it emits and its tracker position commit together. It is the
store's transaction with the table helpers of :class:`~esctl_lib.processing.tables.Tables`
(``insert``, ``upsert``, ``select``, ``defer`` ...): a
:class:`~esctl_lib.processing.batching.BatchTransaction`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from esctl_lib.aggregates import collect_handlers
from esctl_lib.errors import ProcessingError, StoreUnavailableError
from esctl_lib.events import Event, EventRegistry, default_registry, type_name_for
from esctl_lib.processing.tables import Tables, as_tables
from esctl_lib.stores.base import EventStore, Transaction, quote_identifier
from esctl_lib.telemetry import recording, trace_dispatch

F = TypeVar("F", bound=Callable[..., Any])
#: One table's DDL: a statement, several (table then indexes), or either of those per
#: backend SQL (``{"sqlite": ..., "postgresql": ...}``; the memory store speaks "sqlite").
TableDDL = str | Sequence[str] | Mapping[str, str | Sequence[str]]

_CATCH_ALL = "__esctl_handles_all__"
_CREATE_RE = re.compile(r"^\s*CREATE\b", re.IGNORECASE)
_IF_NOT_EXISTS_RE = re.compile(r"\bIF\s+NOT\s+EXISTS\b", re.IGNORECASE)
DEFAULT_BATCH_SIZE = 1000


def handles_all(func: F) -> F:
    """Mark a method as the processor's catch-all handler (at most one per processor).

    With only a catch-all, the processor subscribes to every event. With specific handlers
    too, it subscribes to their types only, and the catch-all runs after them for each.
    """
    func.__esctl_handles_all__ = True  # type: ignore[attr-defined]
    return func


def _find_catch_all(cls: type) -> str | None:
    names = {
        attr
        for klass in cls.__mro__
        for attr, value in vars(klass).items()
        if getattr(value, _CATCH_ALL, False)
    }
    if len(names) > 1:
        raise TypeError(
            f"{cls.__name__} has several catch-all handlers ({', '.join(sorted(names))}); "
            "keep one"
        )
    return names.pop() if names else None


def _check_tables(cls: type, tables: Mapping[str, TableDDL]) -> None:
    for table, ddl in tables.items():
        quote_identifier(table)
        variants = ddl.values() if isinstance(ddl, Mapping) else [ddl]
        for variant in variants:
            for statement in [variant] if isinstance(variant, str) else variant:
                if _CREATE_RE.match(statement) and not _IF_NOT_EXISTS_RE.search(statement):
                    raise TypeError(
                        f"{cls.__name__}.tables[{table!r}]: write CREATE ... IF NOT EXISTS "
                        "so setup can run again"
                    )


class Processor:
    """Base of projectors and reactors: reads the global stream and handles events.

    Class attributes a subclass may set:

    - ``name``: stable name of the processor and its tracker (default: from the class
      name, ``OutstandingTodos`` → ``outstanding_todos``). Renaming it starts over.
    - ``batch_size``: events per read and per transaction (default 1000).
    - ``retry``: retry policy name (``"none"``, ``"constant"``, ``"exponential"``)
      overriding the configured default; ``max_attempts``: failures of one event before
      it is parked (None: never park).
    - ``tables``: tables it owns, ``{name: DDL}``, created by :meth:`setup` and rebuilt by
      :meth:`reset`. DDL is one statement, a list (table, then indexes), or a mapping
      ``{"sqlite": ..., "postgresql": ...}`` by the store's SQL (memory speaks "sqlite");
      every CREATE must say IF NOT EXISTS.
    - ``partitions``: run as this many partitions split by aggregate id, each with its
      own tracker, lock and worker (default 1; see :mod:`esctl_lib.processing.partitions`).
    - ``shared_read``: under a runner, share one read of the stream with the runner's
      other processors (default True; see :mod:`esctl_lib.processing.fanout`). False
      runs it in a child process of its own that reads on its own.
    """

    name: ClassVar[str] = "processor"
    kind: ClassVar[str] = "processor"
    batch_size: ClassVar[int] = DEFAULT_BATCH_SIZE
    retry: ClassVar[str | None] = None
    max_attempts: ClassVar[int | None] = None
    tables: ClassVar[Mapping[str, TableDDL]] = {}
    partitions: ClassVar[int] = 1
    shared_read: ClassVar[bool] = True

    _handlers: ClassVar[dict[str, list[str]]] = {}
    _catch_all: ClassVar[str | None] = None
    _fallback: tuple[Callable[[Event, Tables], None], ...] = ()
    #: The event whose handlers are running (None between events).
    current_event: Event | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = type_name_for(cls.__name__)
        if not isinstance(cls.batch_size, int) or cls.batch_size < 1:
            raise TypeError(f"{cls.__name__}.batch_size must be a whole number >= 1")
        if cls.max_attempts is not None and (
            not isinstance(cls.max_attempts, int) or cls.max_attempts < 1
        ):
            raise TypeError(f"{cls.__name__}.max_attempts must be None or a whole number >= 1")
        if isinstance(cls.partitions, bool) or not isinstance(cls.partitions, int) \
                or cls.partitions < 1:
            raise TypeError(f"{cls.__name__}.partitions must be a whole number >= 1")
        _check_tables(cls, cls.tables)
        cls._handlers = collect_handlers(cls)
        cls._catch_all = _find_catch_all(cls)

    # -- subscription ------------------------------------------------------------------
    @classmethod
    def handled_types(cls) -> list[str] | None:
        """The type names it has handlers for, sorted; None when only a catch-all subscribes."""
        if not cls._handlers and cls._catch_all is not None:
            return None
        return sorted(cls._handlers)

    def types(self, registry: EventRegistry | None = None) -> list[str] | None:
        """The subscription filter: stored type names to read (None: every event).

        Besides the handled types it lists their aliases, and the stored names an upcaster
        may turn into anything (so an upcast event is never missed); events that decode to
        an unhandled type are skipped.
        """
        handled = self.handled_types()
        if handled is None:
            return None
        return sorted(stored_names_for(handled, registry or default_registry))

    # -- handling ------------------------------------------------------------------------
    def handle(self, event: Event, tx: Transaction | Tables) -> None:
        """Run one event's handlers, then the catch-all (see :meth:`process_batch`)."""
        self.process_batch([event], tx, None)

    def process_batch(
        self, events: Sequence[Event], tx: Transaction | Tables, store: EventStore | None
    ) -> int:
        """Handle events in order inside ``tx``; returns how many had handlers.

        Handlers get ``tx`` with the table helpers (a store transaction is wrapped in
        :class:`~esctl_lib.processing.tables.Tables`, whose writes run at once).

        While a handler runs, :attr:`current_event` is its event. A handler's failure is
        raised as a :class:`ProcessingError` naming the event, with the original as its
        cause; a :class:`StoreUnavailableError` passes through unwrapped: the store failed,
        not the event, so it never counts towards parking.
        """
        table = self._dispatch()
        fallback = self._fallback
        tables = as_tables(tx)
        handled = 0
        event: Event | None = None
        try:
            for event in events:
                methods = table.get(event.type, fallback)
                if not methods:
                    continue
                self.current_event = event
                for method in methods:
                    method(event, tables)
                handled += 1
        except StoreUnavailableError:
            raise
        except Exception as e:
            assert event is not None
            raise processing_error(self.name, event, e) from e
        finally:
            self.current_event = None
        return handled

    def _dispatch(self) -> dict[str, tuple[Callable[[Event, Tables], None], ...]]:
        """Type name → bound handlers (catch-all last), built once per instance; each
        handler in a span while a tracer provider is set (checked per batch)."""
        state = self.__dict__
        table: dict[str, tuple[Callable[[Event, Tables], None], ...]] | None
        table = state.get("_dispatch_table")
        if table is None:
            catch_all = (getattr(self, self._catch_all),) if self._catch_all else ()
            table = {
                type_name: (*(getattr(self, m) for m in methods), *catch_all)
                for type_name, methods in self._handlers.items()
            }
            state["_plain_fallback"] = () if self._handlers else catch_all
            state["_dispatch_table"] = table
        if not recording():
            state["_fallback"] = state["_plain_fallback"]
            return table
        traced = state.get("_traced_dispatch")
        if traced is None:
            state["_fallback"] = state["_plain_fallback"]
            traced = state["_traced_dispatch"] = (trace_dispatch(self, table),
                                                  state["_fallback"])
        state["_fallback"] = traced[1]
        return traced[0]  # type: ignore[no-any-return]

    # -- tables --------------------------------------------------------------------------
    def setup(self, store: EventStore) -> None:
        """Create the tables it owns (idempotent)."""
        if not self.tables:
            return
        with store.transaction() as tx:
            tx.lock_schema_changes()  # instances or partitions set up at once
            self.create_tables(tx)

    def reset(self, store: EventStore) -> None:
        """Drop and recreate its tables, clear its parked events, put its tracker at 0.

        One transaction: a reader sees the old projection or the empty new one, never a
        half-dropped state.
        """
        with store.transaction() as tx:
            tx.lock_schema_changes()
            self.drop_tables(tx)
            self.create_tables(tx)
            Tables(tx).delete("parked_events", where={"processor": self.name})
            tx.reset_tracker(self.name, 0)

    def create_tables(self, tx: Transaction | Tables) -> None:
        """Run every table's DDL (the variant for the store's SQL, where it has several)."""
        for table, ddl in self.tables.items():
            for statement in _statements(ddl, tx, table, self.name):
                tx.execute(statement)

    def drop_tables(self, tx: Transaction | Tables) -> None:
        """Drop its tables, last declared first."""
        for table in reversed(list(self.tables)):
            tx.execute(f"DROP TABLE IF EXISTS {quote_identifier(table)}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


def _statements(
    ddl: TableDDL, tx: Transaction | Tables, table: str, processor: str
) -> list[str]:
    if isinstance(ddl, Mapping):
        chosen = tx.sql_variant(ddl)
        if chosen is None:
            raise ProcessingError(
                f"processor {processor!r} has no DDL for table {table!r} in this store's SQL "
                f"(it has DDL for: {', '.join(ddl) or 'nothing'})",
                processor=processor,
            )
        ddl = chosen
    return [ddl] if isinstance(ddl, str) else list(ddl)


def processing_error(processor: str, event: Event, error: BaseException) -> ProcessingError:
    """The ProcessingError for ``error`` raised while ``processor`` handled ``event``."""
    return ProcessingError(
        f"processor {processor!r} failed on event {event.id} ({event.type}, aggregate "
        f"{event.aggregate_id}, uuid {event.uuid}): {type(error).__name__}: {error}",
        processor=processor,
        event_id=event.id,
        event_type=event.type,
        event_uuid=event.uuid,
        aggregate_id=str(event.aggregate_id),
    )


def stored_names_for(type_names: Collection[str], registry: EventRegistry) -> set[str]:
    """Every stored type name that may decode to one of ``type_names``.

    That is each name, its aliases, and every name an upcaster starts from (an upcaster
    may change the type, so such events must be read to be sure).
    """
    return registry.stored_names(type_names)
