"""Settings for the ``esctl`` command line and for applications: :func:`load_settings`.

Precedence, highest first: command-line flags (``overrides``), environment variables
(``ESCTL_STORE__URL`` for ``[store] url``: prefix ``ESCTL_``, nested delimiter ``__``),
the ``eventsourcery.toml`` file, then defaults. The file is ``--config`` /
``ESCTL_CONFIG`` when given, else the first ``eventsourcery.toml`` in the current
directory or one of its parents. Relative paths in the file resolve against the file's
folder; relative paths from flags or the environment resolve against the current directory.

This is the only module of the library that reads environment variables and config files.
The settings are plain frozen dataclasses (picklable, cheap to import); pydantic-settings
is imported only inside :func:`load_settings`.
"""

from __future__ import annotations

import os
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_type_hints

from esctl_lib.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import ValidationError

CONFIG_FILE_NAME = "eventsourcery.toml"
ENV_PREFIX = "ESCTL_"
ENV_CONFIG = "ESCTL_CONFIG"

#: The name of a retry policy (``[processing] retry``); the policies themselves are
#: :class:`esctl_lib.processing.retry.RetryPolicy` subclasses, one per name.
RetryPolicyName = Literal["none", "constant", "exponential"]
RETRY_POLICY_NAMES: tuple[str, ...] = get_args(RetryPolicyName)
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """``[store]``: where the events live."""

    url: str | None = None
    schema: str | None = None
    synchronous: str = "FULL"
    connect_timeout: float = 10.0
    #: PostgreSQL: seconds after which the server ends a session of the store's own that
    #: sits idle inside a transaction (0: never), so a stuck process cannot hold readers back.
    idle_in_transaction_timeout: float = 60.0

    def __repr__(self) -> str:  # the URL masked: settings may end up in a log line
        from esctl_lib.stores.dsn import mask_dsn

        url = None if self.url is None else mask_dsn(self.url)
        return (f"StoreSettings(url={url!r}, schema={self.schema!r}, "
                f"synchronous={self.synchronous!r}, connect_timeout={self.connect_timeout!r})")


@dataclass(frozen=True, slots=True)
class AppSettings:
    """``[app]``: the application's code, found by import path."""

    paths: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    aggregates: tuple[str, ...] = ()
    processors: tuple[str, ...] = ()
    startup_hook: str | None = None
    on_error: str | None = None


@dataclass(frozen=True, slots=True)
class ProcessingSettings:
    """``[processing]``: how processors read and retry."""

    batch_size: int = 1000
    retry: RetryPolicyName = "exponential"
    max_attempts: int | None = None
    grace_period: float = 30.0
    #: Partition counts by processor name, overriding the classes' ``partitions``.
    partitions: dict[str, int] | None = None
    #: Processors of one runner share one read of the stream (their ``shared_read``).
    shared_reads: bool = True
    #: How many children the shared-read processors are spread over (each child reads
    #: once for its own; more children use more cores, fewer read less).
    read_groups: int = 1


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    """``[logging]``: level, and a file to log to instead of stderr."""

    level: str = "info"
    file: str | None = None


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """``[metrics]``: the Prometheus and health endpoint of ``esctl run`` (off without a
    port)."""

    port: int | None = None
    host: str = "0.0.0.0"


@dataclass(frozen=True, slots=True)
class SnapshotSettings:
    """``[snapshots]``: ``every = { "module:Class" = N, Class = N }`` overrides aggregate
    classes' ``snapshot_every`` (0 turns snapshots off for a class)."""

    every: dict[str, int] | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """The effective configuration. ``sources`` says where each value came from."""

    store: StoreSettings = field(default_factory=StoreSettings)
    app: AppSettings = field(default_factory=AppSettings)
    processing: ProcessingSettings = field(default_factory=ProcessingSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    snapshots: SnapshotSettings = field(default_factory=SnapshotSettings)
    #: The config file read, or None when there was none.
    config_file: Path | None = None
    #: ``"section.key"`` -> ``"flag"``, ``"env"``, ``"file"`` or ``"default"``.
    sources: Mapping[str, str] = field(default_factory=dict)

    def origin(self, section: str, key: str) -> str:
        """Where ``[section] key`` was set, for error messages (file, env var or flag)."""
        source = self.sources.get(f"{section}.{key}", "default")
        if source == "file" and self.config_file is not None:
            return f"{self.config_file}: [{section}] {key}"
        if source == "env":
            return f"environment variable {env_name(section, key)}"
        if source == "flag":
            return f"command-line option for [{section}] {key}"
        return f"[{section}] {key}"

    @property
    def base_dir(self) -> Path:
        """The folder relative paths were resolved against."""
        return self.config_file.parent if self.config_file is not None else Path.cwd()


SECTIONS: dict[str, type] = {
    "store": StoreSettings,
    "app": AppSettings,
    "processing": ProcessingSettings,
    "logging": LoggingSettings,
    "metrics": MetricsSettings,
    "snapshots": SnapshotSettings,
}


def env_name(section: str, key: str) -> str:
    """The environment variable that sets ``[section] key``: ``ESCTL_STORE__URL``."""
    return f"{ENV_PREFIX}{section.upper()}__{key.upper()}"


def find_config_file(start: Path | None = None) -> Path | None:
    """The first ``eventsourcery.toml`` in ``start`` (default: the cwd) or its parents."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / CONFIG_FILE_NAME
        if path.is_file():
            return path
    return None


def load_settings(
    *,
    config_path: str | Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Read the effective settings (flags > environment > file > defaults).

    ``config_path`` is ``--config``; ``overrides`` are command-line values by section,
    e.g. ``{"store": {"url": "sqlite:///x.db"}}`` (None values are ignored). Raises
    :class:`ConfigError` naming the file (or variable), key and value on any problem.
    """
    here = (cwd or Path.cwd()).resolve()
    path = _choose_file(config_path, here)
    file_data = _read_file(path) if path is not None else {}
    flags = {
        section: {k: v for k, v in values.items() if v is not None}
        for section, values in (overrides or {}).items()
    }
    flags = {section: values for section, values in flags.items() if values}
    for section, values in flags.items():
        if section not in SECTIONS:
            raise ConfigError(f"unknown settings section {section!r}")
        _check_keys(section, values, "command-line option")
    raw = _plain(file_data, flags) or _validate(file_data, flags, path)
    sources = _sources(file_data, flags)
    settings = Settings(
        store=_resolve_store(StoreSettings(**raw.store.model_dump()), here),
        app=_resolve_app(AppSettings(**raw.app.model_dump()), here),
        processing=ProcessingSettings(**raw.processing.model_dump()),
        logging=_resolve_logging(LoggingSettings(**raw.logging.model_dump()), here),
        metrics=MetricsSettings(**raw.metrics.model_dump()),
        snapshots=SnapshotSettings(**raw.snapshots.model_dump()),
        config_file=path,
        sources=sources,
    )
    _check_values(settings)
    return settings


# -- the config file ------------------------------------------------------------------------


def _choose_file(config_path: str | Path | None, here: Path) -> Path | None:
    explicit: str | Path | None = config_path
    origin = "--config"
    if explicit is None and os.environ.get(ENV_CONFIG):
        explicit, origin = os.environ[ENV_CONFIG], ENV_CONFIG
    if explicit is None:
        return find_config_file(here)
    path = Path(explicit)
    if not path.is_absolute():
        path = here / path
    if not path.is_file():
        raise ConfigError(f"config file {path} ({origin}) does not exist")
    return path.resolve()


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from e
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from e
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"{path}: unknown section [{section}] "
                f"(known: {', '.join(f'[{s}]' for s in SECTIONS)})"
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: {section} must be a table ([{section}])")
        _check_keys(section, values, str(path))
    return _absolutize_file_paths(data, path.parent)


def _check_keys(section: str, values: Mapping[str, Any], origin: str) -> None:
    known = [f.name for f in fields(SECTIONS[section])]
    for key in values:
        if key not in known:
            raise ConfigError(
                f"{origin}: unknown key [{section}] {key} (known: {', '.join(known)})"
            )


def _absolutize_file_paths(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    out = {section: dict(values) for section, values in data.items()}
    store = out.get("store", {})
    if isinstance(store.get("url"), str):
        store["url"] = _absolute_sqlite_url(store["url"], folder)
    app = out.get("app", {})
    if isinstance(app.get("paths"), list):
        app["paths"] = [
            str(folder / p) if isinstance(p, str) and not Path(p).is_absolute() else p
            for p in app["paths"]
        ]
    log = out.get("logging", {})
    if isinstance(log.get("file"), str) and not Path(log["file"]).is_absolute():
        log["file"] = str(folder / log["file"])
    return out


def _absolute_sqlite_url(url: str, folder: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and len(url) > len(prefix) and not url.startswith(prefix + "/"):
        return prefix + str((folder / url[len(prefix):]).resolve())
    return url


# -- validation through pydantic-settings ------------------------------------------------------


def _plain(file_data: dict[str, Any], flags: dict[str, Any]) -> Any:
    """The values without pydantic when nothing needs converting (``config_plain.py``)."""
    from esctl_lib.config_plain import plain_values

    return plain_values(SECTIONS, file_data, flags, os.environ, prefix=ENV_PREFIX,
                        config_variable=ENV_CONFIG)


def _validate(file_data: dict[str, Any], flags: dict[str, Any], path: Path | None) -> Any:
    model = _settings_model(file_data)
    from pydantic import ValidationError

    try:
        return model(**flags)
    except ValidationError as e:
        raise _config_error(e, file_data, flags, path) from None


def _settings_model(file_data: dict[str, Any]) -> Any:
    from pydantic import ConfigDict, create_model
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

    class FileSource(PydanticBaseSettingsSource):
        def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
            return None, field_name, False

        def __call__(self) -> dict[str, Any]:
            return file_data

    class Model(BaseSettings):
        model_config = SettingsConfigDict(
            env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid"
        )

        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource, *args: Any, **kwargs: Any,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, FileSource(settings_cls))

    # One pydantic model per section, mirroring its dataclass (nested models, unlike
    # dataclasses, get JSON values such as lists decoded from environment variables).
    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        hints = get_type_hints(cls)
        with warnings.catch_warnings():  # [store] schema shadows BaseModel.schema: harmless
            warnings.simplefilter("ignore", UserWarning)
            section = create_model(  # type: ignore[call-overload]
                f"{cls.__name__}Model",
                __config__=ConfigDict(extra="forbid"),
                **{f.name: (hints[f.name], f.default) for f in fields(cls)},
            )
        sections[name] = (section, section())
    return create_model("SettingsModel", __base__=Model, **sections)


def _config_error(
    error: ValidationError, file_data: dict[str, Any], flags: dict[str, Any], path: Path | None
) -> ConfigError:
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"]]
    section, key = loc[0], (loc[1] if len(loc) > 1 else "")
    if key and key in flags.get(section, {}):
        where = f"command-line option for [{section}] {key}"
    elif key and env_name(section, key) in os.environ:
        where = f"environment variable {env_name(section, key)}"
    elif path is not None and key in file_data.get(section, {}):
        where = f"{path}: [{section}] {key}"
    elif path is not None and section in file_data and not key:
        where = f"{path}: [{section}]"
    else:
        where = f"environment variable {ENV_PREFIX}{section.upper()}"
    if first["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
        return ConfigError(f"{where}: unknown key")
    value = first.get("input")
    shown = _mask(section, key, value)
    return ConfigError(f"{where} = {shown}: {first['msg']}")


def _mask(section: str, key: str, value: Any) -> str:
    """``value`` for an error message: a store URL masked, and no password in any value
    (a whole ``[store]`` table from ``ESCTL_STORE`` holds the URL too)."""
    from esctl_lib.stores.dsn import mask_dsn, redact_secrets

    if section == "store" and key == "url" and isinstance(value, str):
        return repr(mask_dsn(value))
    return redact_secrets(repr(value))


def _sources(file_data: dict[str, Any], flags: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            if f.name in flags.get(section, {}):
                out[f"{section}.{f.name}"] = "flag"
            elif env_name(section, f.name) in os.environ:
                out[f"{section}.{f.name}"] = "env"
            elif f.name in file_data.get(section, {}):
                out[f"{section}.{f.name}"] = "file"
            else:
                out[f"{section}.{f.name}"] = "default"
    return out


# -- resolving what is left relative, and value checks ----------------------------------------


def _resolve_store(store: StoreSettings, here: Path) -> StoreSettings:
    if store.url is None:
        return store
    return StoreSettings(
        url=_absolute_sqlite_url(store.url, here),
        schema=store.schema,
        synchronous=store.synchronous.upper(),
        connect_timeout=store.connect_timeout,
        idle_in_transaction_timeout=store.idle_in_transaction_timeout,
    )


def _resolve_app(app: AppSettings, here: Path) -> AppSettings:
    paths = tuple(p if Path(p).is_absolute() else str(here / p) for p in app.paths)
    return AppSettings(
        paths=paths,
        events=app.events,
        aggregates=app.aggregates,
        processors=app.processors,
        startup_hook=app.startup_hook,
        on_error=app.on_error,
    )


def _resolve_logging(log: LoggingSettings, here: Path) -> LoggingSettings:
    file = log.file
    if file is not None and not Path(file).is_absolute():
        file = str(here / file)
    return LoggingSettings(level=log.level.lower(), file=file)


def _check_values(settings: Settings) -> None:
    def bad(section: str, key: str, value: Any, why: str) -> ConfigError:
        return ConfigError(f"{settings.origin(section, key)} = {value!r}: {why}")

    from esctl_lib.stores.options import SYNCHRONOUS_MODES  # the SQLite backend's own list

    if settings.store.synchronous not in SYNCHRONOUS_MODES:
        raise bad("store", "synchronous", settings.store.synchronous,
                  f"use one of {', '.join(SYNCHRONOUS_MODES)}")
    if settings.store.connect_timeout <= 0:
        raise bad("store", "connect_timeout", settings.store.connect_timeout, "must be > 0")
    if settings.store.idle_in_transaction_timeout < 0:
        raise bad("store", "idle_in_transaction_timeout",
                  settings.store.idle_in_transaction_timeout, "must be >= 0 (0: never)")
    if settings.processing.batch_size < 1:
        raise bad("processing", "batch_size", settings.processing.batch_size, "must be >= 1")
    attempts = settings.processing.max_attempts
    if attempts is not None and attempts < 1:
        raise bad("processing", "max_attempts", attempts, "must be >= 1")
    if settings.processing.grace_period < 0:
        raise bad("processing", "grace_period", settings.processing.grace_period,
                  "must be >= 0")
    port = settings.metrics.port
    if port is not None and not 0 <= port <= 65535:
        raise bad("metrics", "port", port, "use 0 to 65535 (0: any free port)")
    for ref, every in (settings.snapshots.every or {}).items():
        if every < 0:
            raise bad("snapshots", "every", {ref: every}, "must be >= 0 (0: no snapshots)")
    if settings.logging.level not in LOG_LEVELS:
        raise bad("logging", "level", settings.logging.level,
                  f"use one of {', '.join(LOG_LEVELS)}")
