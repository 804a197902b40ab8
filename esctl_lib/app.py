"""Loading the application a config names: import paths, event modules, aggregates, processors.

``[app] paths`` are prepended to ``sys.path``; ``events`` are imported (their Event
subclasses register their type names); ``aggregates`` and ``processors`` are
``"module:Class"`` references. Every failure is a :class:`ConfigError` naming the file
(or variable), the key and the value. Nothing is imported until :func:`load_app` runs, so a
config with only ``[store]`` serves the store-level commands without the application's code.

Every process of an application builds it here, from the same :class:`Settings`: the CLI
process, and each child of ``esctl run`` (which receives the parent's settings object and
calls :func:`load_app`, :func:`open_configured_store` and :func:`configure_logging` as the
CLI does). So event modules, upcasters, hooks, batch sizes, timeouts and logging are the
same in ``run``, ``run --once``, ``replay`` and ``status``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from esctl_lib.aggregates import Aggregate
from esctl_lib.config import Settings
from esctl_lib.errors import ConfigError
from esctl_lib.events import EventRegistry, default_registry
from esctl_lib.files import make_private_dirs, open_private
from esctl_lib.repository import Repository
from esctl_lib.stores import open_store
from esctl_lib.stores.base import EventStore
from esctl_lib.stores.dsn import redact_secrets, remember_secrets

if TYPE_CHECKING:
    from esctl_lib.processing.processor import Processor

log = logging.getLogger("esctl.app")
#: The log line format of the CLI process.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: The log line format of a runner's child processes (they share the parent's log).
PROCESS_LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(processName)s[%(process)d] %(name)s: %(message)s"
)


@dataclass(frozen=True)
class Application:
    """The loaded application: its registry, aggregates and processors (by name)."""

    settings: Settings
    registry: EventRegistry = default_registry
    aggregates: dict[str, type[Aggregate]] = field(default_factory=dict)
    #: Processor instances by name, in configured order.
    processors: dict[str, Processor] = field(default_factory=dict)
    #: The configured ``"module:Class"`` reference of each processor, by name.
    targets: dict[str, str] = field(default_factory=dict)
    #: ``[app] startup_hook``, resolved: called with the processor in each process.
    startup_hook: Callable[..., Any] | None = None
    #: ``[app] on_error``, resolved: called with (exception, processor name).
    on_error: Callable[..., Any] | None = None

    def repository(self, store: EventStore) -> Repository:
        """A repository on ``store`` with ``[snapshots] every`` applied."""
        return Repository(store, snapshot_every=self.settings.snapshots.every)

    def processor(self, name: str) -> Processor:
        """The configured processor called ``name``; :class:`ConfigError` when there is none."""
        found = self.processors.get(name)
        if found is None:
            raise ConfigError(_unknown_processor(self, name))
        return found

    def select(self, names: Iterable[str]) -> list[Processor]:
        """The named processors (every configured one when ``names`` is empty)."""
        wanted = list(names)
        if not wanted:
            return list(self.processors.values())
        return [self.processor(name) for name in wanted]


def _unknown_processor(app: Application, name: str) -> str:
    configured = ", ".join(app.processors) or "none"
    return (
        f"no processor named {name!r} in {app.settings.origin('app', 'processors')} "
        f"(configured: {configured})"
    )


def add_import_paths(settings: Settings) -> None:
    """Prepend ``[app] paths`` to ``sys.path`` (once each)."""
    for path in reversed(settings.app.paths):
        if path not in sys.path:
            sys.path.insert(0, path)


def load_events(settings: Settings) -> EventRegistry:
    """Import ``[app] events`` (after adding ``[app] paths``); returns the registry."""
    add_import_paths(settings)
    for name in settings.app.events:
        import_module(name, where=settings.origin("app", "events"))
    return default_registry


def load_app(settings: Settings, *, only: Collection[str] | None = None) -> Application:
    """Import the whole application the settings name, checking every reference.

    ``only`` limits the processors created to those ``[app] processors`` references (a
    runner's child builds just its own); everything else is loaded all the same.
    """
    registry = load_events(settings)
    aggregates: dict[str, type[Aggregate]] = {}
    for ref in settings.app.aggregates:
        obj = resolve(settings, "aggregates", ref)
        if not (isinstance(obj, type) and issubclass(obj, Aggregate)):
            raise _bad(settings, "aggregates", ref, "is not an Aggregate subclass")
        aggregates[obj.__name__] = obj
    for ref in settings.snapshots.every or {}:
        if ":" in ref:  # a class name alone is matched when the repository meets it
            where = settings.origin("snapshots", "every")
            obj = import_object(ref, where=where)
            if not (isinstance(obj, type) and issubclass(obj, Aggregate)):
                raise ConfigError(f"{where}: {ref!r} is not an Aggregate subclass")
    processors, targets = _load_processors(settings, only)
    hooks: dict[str, Callable[..., Any] | None] = {}
    for key in ("startup_hook", "on_error"):
        ref = getattr(settings.app, key)
        hooks[key] = resolve(settings, key, ref) if ref else None
        if ref and not callable(hooks[key]):
            raise _bad(settings, key, ref, "is not callable")
    return Application(settings, registry, aggregates, processors, targets,
                       startup_hook=hooks["startup_hook"], on_error=hooks["on_error"])


def _load_processors(
    settings: Settings, only: Collection[str] | None
) -> tuple[dict[str, Processor], dict[str, str]]:
    from esctl_lib.processing.partitions import apply_partitions
    from esctl_lib.processing.processor import Processor

    processors: dict[str, Processor] = {}
    targets: dict[str, str] = {}
    for ref in settings.app.processors:
        if only is not None and ref not in only:
            continue
        obj = resolve(settings, "processors", ref)
        if isinstance(obj, type) and issubclass(obj, Processor):
            try:
                instance = obj()
            except Exception as e:
                raise _bad(settings, "processors", ref,
                           f"cannot be created: {type(e).__name__}: {e}") from e
        elif isinstance(obj, Processor):
            instance = obj
        else:
            raise _bad(settings, "processors", ref,
                       "is not a processor (a Projector or Reactor subclass)")
        if instance.name in processors:
            raise _bad(settings, "processors", ref,
                       f"has the name {instance.name!r} of another configured processor")
        _apply_batch_size(settings, instance)
        apply_partitions(instance, settings.processing.partitions,
                         settings.origin("processing", "partitions"))
        processors[instance.name] = instance
        targets[instance.name] = ref
    return processors, targets


def _apply_batch_size(settings: Settings, processor: Processor) -> None:
    """An explicit ``[processing] batch_size`` applies to every processor whose own classes
    do not set one; a processor's own batch size wins over the default."""
    if settings.sources.get("processing.batch_size", "default") == "default":
        return
    declared = any("batch_size" in vars(k) for k in type(processor).__mro__
                   if not k.__module__.startswith("esctl_lib."))
    if not declared:
        instance: Any = processor  # a class default, overridden on this instance only
        instance.batch_size = settings.processing.batch_size


def resolve(settings: Settings, key: str, ref: str) -> Any:
    """The object ``[app] key``'s ``"package.module:Name"`` refers to."""
    return import_object(ref, where=settings.origin("app", key))


def import_object(ref: str, *, where: str = "import path") -> Any:
    """The object ``"package.module:Name"`` refers to (``Name`` may be dotted).

    The one rule for import paths. Failures are a :class:`ConfigError`
    ``"<where>: '<ref>' <why>"``.
    """
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{where}: {ref!r} is not an import path: write package.module:Name")
    obj: Any = import_module(module_name, where=where, ref=ref)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{where}: {ref!r} module {module_name} has no {attr!r}") from None
    return obj


def import_module(module_name: str, *, where: str, ref: str | None = None) -> ModuleType:
    """Import ``module_name``; a failure is a :class:`ConfigError` naming ``where``."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ConfigError(f"{where}: {ref or module_name!r} cannot import it: {e}") from e
    except Exception as e:
        log.debug("importing %s failed", module_name, exc_info=True)
        raise ConfigError(f"{where}: {ref or module_name!r} importing {module_name} failed: "
                          f"{type(e).__name__}: {e}") from e


def import_path(obj: Any) -> str:
    """The ``"module:QualName"`` import path of a class or function (a string is kept)."""
    if isinstance(obj, str):
        return obj
    qualname = getattr(obj, "__qualname__", "")
    if "<locals>" in qualname or not getattr(obj, "__module__", None):
        raise ConfigError(f"{obj!r} is not importable by path: define it at module level")
    return f"{obj.__module__}:{qualname}"


def _bad(settings: Settings, key: str, value: str, why: str) -> ConfigError:
    return ConfigError(f"{settings.origin('app', key)}: {value!r} {why}")


def open_configured_store(
    settings: Settings, *, registry: EventRegistry | None = None
) -> EventStore:
    """Open the store ``[store]`` names. ``registry`` decodes events (default: the global one;
    pass an empty ``EventRegistry()`` to read events exactly as stored)."""
    url = settings.store.url
    if not url:
        raise ConfigError(no_store_message(settings))
    remember_secrets(url)
    kwargs: dict[str, Any] = {}
    if registry is not None:
        kwargs["registry"] = registry
    return open_store(
        url,
        base_dir=settings.base_dir,
        schema=settings.store.schema,
        synchronous=settings.store.synchronous,
        connect_timeout=settings.store.connect_timeout,
        idle_in_transaction_timeout=settings.store.idle_in_transaction_timeout,
        **kwargs,
    )


def no_store_message(settings: Settings) -> str:
    """Why there is no store to open, and how to name one."""
    if settings.config_file is not None:
        return f"{settings.config_file}: no [store] url (set it, or ESCTL_STORE__URL)"
    return (
        "no store configured: no eventsourcery.toml in this folder or its parents, and "
        "ESCTL_STORE__URL is not set (run `esctl init`, or pass --config)"
    )


# -- logging -----------------------------------------------------------------------------------

#: The handler :func:`configure_logging` installed (replaced by the next call).
_handlers: list[logging.Handler] = []


class RedactingFormatter(logging.Formatter):
    """Formats a record, then removes every password from the line (tracebacks included)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_secrets(super().format(record))


def configure_logging(settings: Settings, *, fmt: str = LOG_FORMAT) -> None:
    """Log at ``[logging] level`` to stderr, or append to ``[logging] file``.

    The one logging setup of every esctl process (the CLI's and each runner child's): the
    configured store's secrets never reach a log line, at any level, and the connection
    pool's retry warnings appear only at debug level (the outcome is reported once).
    Calling it again replaces the handler it installed before.
    """
    remember_secrets(settings.store.url)
    level, file = settings.logging.level, settings.logging.file
    handler = _open_log_file(Path(file)) if file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(fmt))
    reset_logging()
    _handlers.append(handler)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("psycopg.pool").setLevel(
        logging.DEBUG if level.lower() == "debug" else logging.CRITICAL)


class PrivateFileHandler(logging.FileHandler):
    """Appends to a log file created readable by its owner only (0600; an existing file
    keeps its mode). A write that fails (a full disk) is reported once, in one line on
    stderr, instead of logging's traceback for every record."""

    _reported = False

    def _open(self):  # type: ignore[no-untyped-def]  # (typeshed: TextIOWrapper)
        fd = open_private(self.baseFilename, os.O_WRONLY | os.O_APPEND)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)
            return
        if not self._reported:
            self._reported = True
            with contextlib.suppress(Exception):
                sys.stderr.write(f"esctl: warning: cannot write log file {self.baseFilename}: "
                                 f"{error.strerror or error}\n")


def _open_log_file(path: Path) -> logging.Handler:
    try:
        make_private_dirs(path.parent)
        return PrivateFileHandler(path, encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"[logging] file {path}: cannot open it: {e.strerror}") from e


def reset_logging() -> None:
    """Remove (and close) the handler :func:`configure_logging` installed."""
    root = logging.getLogger()
    while _handlers:
        old = _handlers.pop()
        root.removeHandler(old)
        old.close()
