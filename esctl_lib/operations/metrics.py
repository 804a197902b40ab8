"""The endpoint of ``esctl run --metrics-port``: ``/metrics`` and ``/healthz`` (see
:mod:`esctl_lib.metrics` for what each figure is and where it comes from).

It lives in ``operations`` because it answers with :func:`status_report`, the check of
``esctl status``; the runner only counts (``esctl_lib.metrics``), so nothing below the
operations imports them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from esctl_lib import metrics as counting
from esctl_lib.errors import ConfigError, EsctlError
from esctl_lib.metrics import CHILD_ENV, PREFIX, PROMETHEUS_ENV
from esctl_lib.operations.status import StatusReport, status_report
from esctl_lib.stores.dsn import redact_secrets

if TYPE_CHECKING:
    from esctl_lib.app import Application
    from esctl_lib.config import Settings
    from esctl_lib.processing.processor import Processor
    from esctl_lib.stores.base import EventStore

log = logging.getLogger("esctl.metrics")


@dataclass
class MetricsServer:
    """The runner's endpoint: ``/metrics`` and ``/healthz`` (see the module docstring)."""

    settings: Settings
    processors: list[Processor]
    folder: str
    port: int = 0
    _store: EventStore | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _http: HTTPServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen on ``[metrics] host``/``port`` (0: a free port, see :attr:`port`)."""
        metrics = self.settings.metrics
        handler = _handler(self)
        try:
            self._http = HTTPServer((metrics.host, metrics.port or 0), handler)
        except OSError as e:
            raise ConfigError(f"cannot serve metrics on {metrics.host}:{metrics.port}: "
                              f"{e.strerror or e}") from None
        self.port = int(self._http.server_address[1])
        self._thread = threading.Thread(target=self._http.serve_forever,
                                        name="esctl-metrics", daemon=True)
        self._thread.start()
        log.info("serving metrics on http://%s:%d/metrics (health: /healthz)",
                 metrics.host, self.port)

    def stop(self) -> None:
        """Stop listening and close the store."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def report(self, **limits: Any) -> StatusReport:
        """``esctl status``'s report, from the store now."""
        from esctl_lib.app import open_configured_store

        with self._lock:
            try:
                if self._store is None:
                    self._store = open_configured_store(self.settings)
                return status_report(self._store, self.processors, **limits)
            except EsctlError:
                if self._store is not None:  # open afresh next time
                    with contextlib.suppress(Exception):
                        self._store.close()
                    self._store = None
                raise

    def exposition(self) -> bytes:
        """Every metric, as Prometheus text."""
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry()
        registry.register(_ChildFiles(self.folder))  # type: ignore[arg-type]
        registry.register(_StoreCollector(self))  # type: ignore[arg-type]
        return bytes(generate_latest(registry))

    def health(self, query: str = "") -> tuple[int, str]:
        """``(HTTP status, body)`` of ``/healthz``."""
        from esctl_lib.stores.dsn import redact_secrets

        try:
            report = self.report(**_limits(query))
        except EsctlError as e:
            return 503, f"store unavailable: {redact_secrets(str(e))}\n"
        if report.healthy:
            return 200, f"ok: {len(report.processors)} processor(s) healthy\n"
        return 503, "".join(f"{redact_secrets(p)}\n" for p in report.problems)


class _ChildFiles:
    """The children's counters: prometheus-client's multiprocess files in ``folder``, less
    those still at 0 bytes. A child creates its file and sizes it only after
    (prometheus/client_python#1199), and reading one in between raised ``struct.error``,
    which failed the whole scrape; for good when the child was killed in that window,
    since its empty file stays. A file at 0 bytes holds no sample yet."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def collect(self) -> Any:
        from prometheus_client.multiprocess import MultiProcessCollector

        files = []
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if entry.name.endswith(".db"):
                    with contextlib.suppress(FileNotFoundError):
                        if entry.stat().st_size:
                            files.append(entry.path)
        return MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]


def _limits(query: str) -> dict[str, Any]:
    values = parse_qs(query)
    out: dict[str, Any] = {}
    for key, kind in (("max_lag", int), ("max_lag_seconds", float), ("stale_after", float)):
        if key in values:
            try:
                out[key] = kind(values[key][-1])
            except ValueError:
                continue
    return out


class _StoreCollector:
    """The gauges computed from the store at scrape time, and the runner's restarts."""

    def __init__(self, server: MetricsServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from esctl_lib.processing.state import STATES

        up = GaugeMetricFamily(f"{PREFIX}store_up", "1 when the store answered this scrape")
        try:
            report = self.server.report()
        except EsctlError as e:
            log.warning("metrics: the store did not answer: %s", e)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        head = GaugeMetricFamily(f"{PREFIX}store_head_position",
                                 "The newest readable event id")
        head.add_metric([], report.head)
        yield head
        total = GaugeMetricFamily(f"{PREFIX}store_events",
                                  "Events in the store (estimated beyond 10,000)")
        total.add_metric([], report.total_events)
        yield total
        labels = ["processor"]
        gauges = {
            "position": ("processor_position", "The processor's tracker position"),
            "lag_events": ("processor_lag_events",
                           "Events yet to process (estimated beyond 10,000; see "
                           "esctl_processor_lag_estimated)"),
            "lag_estimated": ("processor_lag_estimated", "1 when lag_events is an estimate"),
            "lag_seconds": ("processor_lag_seconds",
                            "Age of the oldest event yet to process"),
            "parked": ("processor_parked_events", "Events parked for the processor"),
            "healthy": ("processor_healthy",
                        "1 when healthy, as esctl status --check judges it"),
            "heartbeat_age": ("processor_heartbeat_age_seconds",
                              "Seconds since the processor's last heartbeat"),
        }
        families = {key: GaugeMetricFamily(f"{PREFIX}{metric}", text, labels=labels)
                    for key, (metric, text) in gauges.items()}
        state = GaugeMetricFamily(f"{PREFIX}processor_state",
                                  "1 for the processor's current state", labels=[
                                      "processor", "state"])
        stale = GaugeMetricFamily(f"{PREFIX}processor_stale",
                                  "1 when a live state's heartbeat stopped", labels=labels)
        for p in report.processors:
            values = {"position": p.position, "lag_events": p.lag_events,
                      "lag_estimated": int(p.lag_estimated), "lag_seconds": p.lag_seconds,
                      "parked": p.parked, "healthy": int(p.healthy),
                      "heartbeat_age": p.heartbeat_age}
            for key, family in families.items():
                value = values[key]
                if value is not None:
                    family.add_metric([p.name], float(value))
            current = p.state.split(" ")[0]
            for name in STATES:
                state.add_metric([p.name, name], 1.0 if name == current else 0.0)
            stale.add_metric([p.name], 1.0 if p.state.endswith("(stale)") else 0.0)
        yield from families.values()
        yield state
        yield stale
        restarts = CounterMetricFamily(f"{PREFIX}processor_restarts",
                                       "Restarts of the processor's child by the runner",
                                       labels=labels)
        counts = counting.restarts()
        for p in report.processors:
            restarts.add_metric([p.name], counts.get(p.name, 0))
        yield restarts


def _handler(server: MetricsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            try:
                if url.path == "/metrics":
                    from prometheus_client import CONTENT_TYPE_LATEST

                    self._send(200, server.exposition(), CONTENT_TYPE_LATEST)
                elif url.path == "/healthz":
                    status, body = server.health(url.query)
                    self._send(status, body.encode(), "text/plain; charset=utf-8")
                else:
                    self._send(404, b"not found: try /metrics or /healthz\n", "text/plain")
            except Exception as e:  # a store that cannot be read now: say so, never hang up
                reason = redact_secrets(str(e)) or type(e).__name__
                log.warning("metrics: %s failed: %s", url.path, reason)
                line = f"unhealthy: {reason}\n"
                self._send(503, line.encode(), "text/plain; charset=utf-8")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("metrics: " + format, *args)

    return Handler


@contextlib.contextmanager
def serving(settings: Settings, names: Sequence[str] = (),
            app: Application | None = None) -> Iterator[MetricsServer | None]:
    """Serve the runner's metrics while the block runs (nothing without ``[metrics] port``).

    Children started inside the block count into the server's private folder."""
    if settings.metrics.port is None:
        yield None
        return
    counting.require_prometheus()
    from esctl_lib.app import load_app

    app = app if app is not None else load_app(settings)
    folder = tempfile.mkdtemp(prefix="esctl-metrics-")  # mode 0700
    server = MetricsServer(settings, app.select(names), folder)
    saved = {key: os.environ.get(key) for key in (CHILD_ENV, PROMETHEUS_ENV)}
    try:
        server.start()
        os.environ[CHILD_ENV] = os.environ[PROMETHEUS_ENV] = folder
        yield server
    finally:
        for key, value in saved.items():
            _restore(key, value)
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _restore(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value

