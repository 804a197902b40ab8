"""Prometheus metrics and a health endpoint for ``esctl run`` (``--metrics-port``, or
``[metrics] port``), with prometheus-client.

The runner serves ``/metrics`` (Prometheus text) and ``/healthz`` on one port. Where each
figure comes from:

- **From the store, at scrape time** (the runner process): each processor's position,
  lag in events and seconds, parked events, state, health and heartbeat age, and the
  store's head: :func:`~esctl_lib.operations.status.status_report`, the very numbers and
  health ``esctl status`` shows (bounded time: no scan of the stream). Nothing is cached
  that could go stale, and it is true whichever process or host moved a tracker.
- **Counted in the runner's children**: events processed, batch durations (a histogram)
  and failures, through prometheus-client's multiprocess mode in a private temporary
  folder (0700) that the runner creates before it starts its children and removes when
  it stops. A child's files outlive it, so a restart never sets a counter back.
- **Counted by the runner**: restarts of each processor's child.

``/healthz`` answers as ``esctl status --check`` does: 200 and ``ok: ...`` when every
processor is healthy, else 503 with one line per problem (health never turns good by
itself: a failing, crashed, parked-on-error or silent processor stays unhealthy until it
processes successfully again). ``?max_lag=N&max_lag_seconds=S&stale_after=S`` apply the
same thresholds as the ``status`` options.

This module is what the runner and its children call (:func:`instrument` in a child,
:func:`note_restart` in the runner); the endpoint itself is
:mod:`esctl_lib.operations.metrics`, started by
:func:`~esctl_lib.operations.running.run_processors`.

Every metric is labelled ``processor``; a partitioned processor adds ``partition``, so
``sum by (processor)`` works either way. No label or value carries the store URL.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from esctl_lib.errors import ConfigError

if TYPE_CHECKING:
    from esctl_lib.processing.processor import Processor

#: Set by the runner for its children: the folder their counters go to.
CHILD_ENV = "_ESCTL_METRICS_DIR"
PROMETHEUS_ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "esctl_"
_restarts: dict[str, int] = {}
_restarts_lock = threading.Lock()


def require_prometheus() -> None:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
        raise ConfigError("metrics need prometheus-client: pip install prometheus-client") \
            from None


# -- in a runner child ---------------------------------------------------------------------
@dataclass
class _ChildMetrics:
    processed: Any
    failures: Any
    batch_seconds: Any


_CHILD: _ChildMetrics | None = None


def _child_metrics() -> _ChildMetrics:
    global _CHILD
    if _CHILD is None:
        from prometheus_client import Counter, Histogram

        _CHILD = _ChildMetrics(
            processed=Counter(f"{PREFIX}processor_events_processed",
                              "Events through a processor's handlers (in committed and "
                              "failed-then-redone batches alike)", ["processor"],
                              registry=None),
            failures=Counter(f"{PREFIX}processor_failures",
                             "Failed attempts at a batch (a handler raised)", ["processor"],
                             registry=None),
            batch_seconds=Histogram(f"{PREFIX}processor_batch_duration_seconds",
                                    "Time to handle one batch", ["processor"], registry=None),
        )
    return _CHILD


def instrument(processor: Processor) -> None:
    """In a runner child serving metrics: count ``processor``'s batches (else nothing).

    Wraps the instance's ``process_batch``: events processed, the batch's duration, and a
    failure when a handler raises.
    """
    folder = os.environ.get(CHILD_ENV)
    if not folder:
        return
    os.environ[PROMETHEUS_ENV] = folder  # before prometheus-client makes any value here
    metrics = _child_metrics()
    name = processor.name
    original = processor.process_batch

    def process_batch(events: Sequence[Any], *args: Any, **kwargs: Any) -> int:
        started = time.perf_counter()
        try:
            handled = original(events, *args, **kwargs)
        except Exception:
            metrics.failures.labels(name).inc()
            raise
        metrics.batch_seconds.labels(name).observe(time.perf_counter() - started)
        metrics.processed.labels(name).inc(len(events))
        return handled

    processor.process_batch = process_batch  # type: ignore[method-assign]


def note_restart(name: str) -> None:
    """The runner restarts processor ``name``'s child (exported as
    ``esctl_processor_restarts_total`` while metrics are served)."""
    with _restarts_lock:
        _restarts[name] = _restarts.get(name, 0) + 1


def restarts() -> dict[str, int]:
    """Restarts of each processor's child by the runner in this process so far."""
    with _restarts_lock:
        return dict(_restarts)
