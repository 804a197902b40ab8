"""``esctl run``: the configured processors under the supervising runner."""

from __future__ import annotations

from collections.abc import Iterable

from esctl_lib.app import Application, no_store_message
from esctl_lib.errors import ConfigError


def run_processors(app: Application, names: Iterable[str] = (), *, once: bool = False) -> int:
    """Run the named processors (all configured ones by default) with the app's settings.

    Continuous mode runs each in its own process until SIGTERM/SIGINT; ``once`` processes
    everything up to the current head and returns. Returns the runner's exit code.
    """
    from esctl_lib.processing.runner import run

    settings = app.settings
    selected = app.select(names)
    if settings.store.url is None:
        raise ConfigError(no_store_message(settings))
    explicit = settings.sources
    return run(
        settings.store.url,
        [app.targets[p.name] for p in selected],
        schema=settings.store.schema,
        synchronous=settings.store.synchronous,
        base_dir=settings.base_dir,
        sys_path=settings.app.paths,
        once=once,
        grace_period=settings.processing.grace_period,
        retry=settings.processing.retry,
        max_attempts=settings.processing.max_attempts,
        # A processor's own batch size wins unless the config sets one explicitly.
        batch_size=(settings.processing.batch_size
                    if explicit.get("processing.batch_size", "default") != "default" else None),
        startup_hook=settings.app.startup_hook,
        on_error=settings.app.on_error,
        log_level=settings.logging.level.upper(),
        log_file=settings.logging.file,
    )
