"""``esctl run``: the configured processors under the supervising runner."""

from __future__ import annotations

from collections.abc import Iterable

from esctl_lib.app import Application, no_store_message
from esctl_lib.errors import ConfigError


def run_processors(app: Application, names: Iterable[str] = (), *, once: bool = False) -> int:
    """Run the named processors (all configured ones by default) with the app's settings.

    Continuous mode runs each in its own process until SIGTERM/SIGINT; each child builds
    this same application from these same settings. ``once`` processes everything up to
    the current head in this process and returns. Returns the runner's exit code.
    With ``[metrics] port``, a continuous run serves ``/metrics`` and ``/healthz`` there
    (:mod:`esctl_lib.operations.metrics`).
    """
    from esctl_lib.operations.metrics import serving
    from esctl_lib.runner import run

    if app.settings.store.url is None:
        raise ConfigError(no_store_message(app.settings))
    if once:
        return run(app, list(names), once=True)
    with serving(app.settings, list(names), app):  # [metrics] port: /metrics, /healthz
        return run(app, list(names))
