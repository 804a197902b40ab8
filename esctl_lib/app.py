"""Loading the application a config names: import paths, event modules, aggregates, processors.

``[app] paths`` are prepended to ``sys.path``; ``events`` are imported (their Event
subclasses register their type names); ``aggregates`` and ``processors`` are
``"module:Class"`` references. Every failure is a :class:`ConfigError` naming the file
(or variable), the key and the value. Nothing is imported until :func:`load_app` runs, so a
config with only ``[store]`` serves the store-level commands without the application's code.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from esctl_lib.aggregates import Aggregate
from esctl_lib.config import Settings
from esctl_lib.errors import ConfigError
from esctl_lib.events import EventRegistry, default_registry
from esctl_lib.stores import open_store
from esctl_lib.stores.base import EventStore

if TYPE_CHECKING:
    from esctl_lib.processing.processor import Processor

log = logging.getLogger("esctl.app")


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
        _import_module(settings, "events", name)
    return default_registry


def load_app(settings: Settings) -> Application:
    """Import the whole application the settings name, checking every reference."""
    registry = load_events(settings)
    aggregates: dict[str, type[Aggregate]] = {}
    for ref in settings.app.aggregates:
        obj = resolve(settings, "aggregates", ref)
        if not (isinstance(obj, type) and issubclass(obj, Aggregate)):
            raise _bad(settings, "aggregates", ref, "is not an Aggregate subclass")
        aggregates[obj.__name__] = obj
    processors, targets = _load_processors(settings)
    for key in ("startup_hook", "on_error"):
        ref = getattr(settings.app, key)
        if ref and not callable(resolve(settings, key, ref)):
            raise _bad(settings, key, ref, "is not callable")
    return Application(settings, registry, aggregates, processors, targets)


def _load_processors(settings: Settings) -> tuple[dict[str, Processor], dict[str, str]]:
    from esctl_lib.processing.processor import Processor

    processors: dict[str, Processor] = {}
    targets: dict[str, str] = {}
    for ref in settings.app.processors:
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
        processors[instance.name] = instance
        targets[instance.name] = ref
    return processors, targets


def resolve(settings: Settings, key: str, ref: str) -> Any:
    """The object ``"package.module:Name"`` refers to (``Name`` may be dotted)."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise _bad(settings, key, ref, "is not an import path: write package.module:Name")
    obj: Any = _import_module(settings, key, module_name, ref)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise _bad(settings, key, ref, f"module {module_name} has no {attr!r}") from None
    return obj


def _import_module(
    settings: Settings, key: str, module_name: str, ref: str | None = None
) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise _bad(settings, key, ref or module_name, f"cannot import it: {e}") from e
    except Exception as e:
        log.debug("importing %s failed", module_name, exc_info=True)
        raise _bad(settings, key, ref or module_name,
                   f"importing {module_name} failed: {type(e).__name__}: {e}") from e


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
    kwargs: dict[str, Any] = {}
    if registry is not None:
        kwargs["registry"] = registry
    if url.split(":", 1)[0].lower() in ("postgresql", "postgres"):
        kwargs["connect_timeout"] = settings.store.connect_timeout
    return open_store(
        url,
        base_dir=settings.base_dir,
        schema=settings.store.schema,
        synchronous=settings.store.synchronous,
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
