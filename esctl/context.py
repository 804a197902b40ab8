"""What every command shares: the lazily loaded settings, store and application, and the
one place where library errors become a one-line message and a documented exit code.

Typer is imported only where a command raises its ``Exit``: ``esctl status`` runs without
it (:mod:`esctl.status`).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from esctl import exit_codes, render

if TYPE_CHECKING:
    import typer

    from esctl_lib import Application, EventRegistry, EventStore, Processor, Settings

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Session:
    """One invocation's global options, and what they lead to (loaded on first use)."""

    config_path: Path | None = None
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    _settings: Settings | None = None
    _app: Application | None = None
    _stores: list[EventStore] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        """The effective settings (flags > environment > file > defaults); sets up logging."""
        if self._settings is None:
            from esctl_lib import configure_logging, load_settings

            self._settings = load_settings(config_path=self.config_path,
                                           overrides=self.overrides)
            configure_logging(self._settings)
        return self._settings

    @property
    def app(self) -> Application:
        """The application the settings name (imported on first use)."""
        if self._app is None:
            from esctl_lib import load_app

            self._app = load_app(self.settings)
        return self._app

    @property
    def registry(self) -> EventRegistry:
        """The event registry after importing ``[app] events`` (not the whole app)."""
        from esctl_lib import load_events

        return load_events(self.settings)

    def store(self, *, as_stored: bool = False) -> EventStore:
        """Open the configured store. ``as_stored`` reads events exactly as stored (no
        upcasting: for tail, events and export)."""
        from esctl_lib import EventRegistry, open_configured_store

        store = open_configured_store(self.settings,
                                      registry=EventRegistry() if as_stored else None)
        self._stores.append(store)
        return store

    def close(self) -> None:
        """Close every store opened."""
        stores, self._stores = self._stores, []
        for store in stores:
            store.close()
        if self._settings is not None:
            from esctl_lib import reset_logging

            reset_logging()


def new_session(config_path: Path | None = None, store_url: str | None = None,
                schema: str | None = None, log_level: str | None = None) -> Session:
    """The session of the global options (``--config``, ``--store-url``, ``--schema``,
    ``--log-level``; None: not given)."""
    return Session(config_path=config_path,
                   overrides={"store": {"url": store_url, "schema": schema},
                              "logging": {"level": log_level}})


def session(ctx: typer.Context) -> Session:
    """The invocation's session (made by the main callback)."""
    obj = ctx.find_root().obj
    if not isinstance(obj, Session):
        obj = Session()
        ctx.find_root().obj = obj
    return obj


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command: a library error prints one line on stderr and exits with its code.

    Every command goes through this (Typer's test runner calls commands directly, so a
    try/except around the app would not run in tests). Anything else is a bug and keeps
    its traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except BaseException as e:
            code = error_exit(e)
            if code is None:
                raise
            import typer

            if isinstance(e, typer.Exit):
                raise
            raise typer.Exit(code) from None

    return wrapper


def error_exit(error: BaseException) -> int | None:
    """The exit code a command ends with on ``error``, once its message is printed: a
    library error prints one line, Ctrl-C is 130, a reader that went away (``esctl tail |
    head``) is no error, a Typer ``Exit`` keeps its code. None for anything else: a bug,
    which keeps its traceback."""
    if isinstance(error, KeyboardInterrupt):
        return exit_codes.INTERRUPTED
    if isinstance(error, BrokenPipeError):
        _quiet_stdout()
        return exit_codes.OK
    typer = sys.modules.get("typer")  # only a command that raised its Exit imported it
    if typer is not None and isinstance(error, typer.Exit):
        return int(error.exit_code)
    if isinstance(error, Exception):
        from esctl_lib import EsctlError  # imported late: `esctl --help` never needs it

        if isinstance(error, EsctlError):
            render.error(_with_hint(error))
            return exit_codes.exit_code_for(error)
    return None


def _with_hint(error: Exception) -> str:
    from esctl_lib import UnknownEventTypeError

    if isinstance(error, UnknownEventTypeError):
        return (f"{error} (no module in [app] events registers it; "
                "use --allow-unknown-type to accept it anyway)")
    return str(error)


def _quiet_stdout() -> None:
    """After the reader of a pipe went away (``esctl tail | head``), drop further output."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def fail(message: str, code: int = exit_codes.FAILURE) -> typer.Exit:
    """Print a one-line error and return the Exit to raise (for checks made by the CLI)."""
    import typer

    render.error(message)
    return typer.Exit(code)


def configured_processor(s: Session, name: str) -> Processor:
    """The processor ``name`` of ``[app] processors``; an unknown name is a usage error."""
    from esctl_lib import ConfigError

    app = s.app  # a config that does not load stays a configuration error (exit 3)
    try:
        return app.processor(name)
    except ConfigError as e:
        raise fail(str(e), exit_codes.USAGE) from None


def require_known_processor(s: Session, store: EventStore, name: str) -> None:
    """Refuse (exit 2) a processor name that is neither configured nor known to the store
    (no tracker, no parked event): ``esctl errors nope`` must not look like "no errors".

    The store is asked first, so a store-level config (no ``[app]``) serves known names.
    """
    from esctl_lib import parked_events

    if name in store.trackers() or any(p.processor == name for p in parked_events(store)):
        return
    configured_processor(s, name)


@contextmanager
def interrupt_exits_130() -> Iterator[None]:
    """Exit 130 when a Ctrl-C (SIGINT) arrived while the block ran, even one that a signal
    handler inside it turned into a clean stop (the runner does: it stops its children and
    returns 0). Signals are seen through Python's wakeup fd, which every Python-level
    handler feeds, whoever installed it."""
    import os
    import signal

    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    try:
        previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    except ValueError:  # not the main thread: nothing to observe
        os.close(read)
        os.close(write)
        yield
        return
    interrupted = False
    try:
        yield
    except KeyboardInterrupt:
        interrupted = True
    finally:
        signal.set_wakeup_fd(previous, warn_on_full_buffer=False)
        try:
            seen = os.read(read, 4096)
        except BlockingIOError:
            seen = b""
        os.close(read)
        os.close(write)
    if interrupted or signal.SIGINT in seen:
        import typer

        raise typer.Exit(exit_codes.INTERRUPTED)
