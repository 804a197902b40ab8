"""OpenTelemetry spans (the ``otel`` extra) around saves and event handlers, with the
correlation and causation ids, recorded by the SDK's in-memory exporter."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from esctl_lib import Aggregate, Event, Repository, handles, open_store
from esctl_lib.processing import Projector, handles_all, process_available
from esctl_lib.telemetry import enabled

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

_EXPORTER = InMemorySpanExporter()


class OtOpened(Event, type_name="ot_opened"):
    pass


class OtNamed(Event, type_name="ot_named"):
    pass


class Thing(Aggregate):
    @handles(OtOpened)
    def _opened(self, event: Event) -> None:
        pass

    @handles(OtNamed)
    def _named(self, event: Event) -> None:
        pass


class Seen(Projector):
    name = "ot_seen"

    @handles(OtOpened)
    def _on_opened(self, event: Event, tx: Any) -> None:
        pass


class SeenAll(Projector):
    name = "ot_seen_all"

    @handles_all
    def _any(self, event: Event, tx: Any) -> None:
        pass


@pytest.fixture(scope="module", autouse=True)
def provider() -> None:
    tracer_provider = sdk_trace.TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(tracer_provider)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def test_the_api_being_installed_turns_spans_on() -> None:
    assert enabled()


def test_a_save_is_one_span_with_the_aggregate_and_the_command_ids(
        spans: InMemorySpanExporter) -> None:
    store = open_store("memory://")
    correlation, causation = str(uuid.uuid4()), str(uuid.uuid4())
    thing = Thing(str(uuid.uuid4()))
    thing.apply(OtOpened(aggregate_id=thing.id))
    thing.apply(OtNamed(aggregate_id=thing.id, body={"name": "x"}))
    stored = Repository(store).save(thing, correlation_id=correlation, causation_id=causation)
    [span] = spans.get_finished_spans()
    assert span.name == "esctl.save Thing"
    attributes = dict(span.attributes or {})
    assert attributes["esctl.correlation_id"] == correlation
    assert attributes["esctl.causation_id"] == causation
    assert attributes["esctl.aggregate_id"] == str(thing.id)
    assert attributes["esctl.events"] == 2
    assert attributes["esctl.position"] == stored[-1].id


def test_a_save_without_changes_makes_no_span(spans: InMemorySpanExporter) -> None:
    Repository(open_store("memory://")).save(Thing(str(uuid.uuid4())))
    assert spans.get_finished_spans() == ()


def test_each_handled_event_is_a_span_carrying_its_correlation_and_causation(
        spans: InMemorySpanExporter) -> None:
    store = open_store("memory://")
    correlation, causation = str(uuid.uuid4()), str(uuid.uuid4())
    aggregate = str(uuid.uuid4())
    store.append([OtOpened(aggregate_id=aggregate, correlation_id=correlation,
                           causation_id=causation),
                  OtNamed(aggregate_id=aggregate, correlation_id=correlation)])
    assert process_available(Seen(), store) == 1
    assert process_available(SeenAll(), store) == 2
    handled = [s for s in spans.get_finished_spans() if s.name.startswith("esctl.handle")]
    assert [(s.name, dict(s.attributes or {})["esctl.processor"]) for s in handled] == [
        ("esctl.handle ot_opened", "ot_seen"),
        ("esctl.handle ot_opened", "ot_seen_all"),
        ("esctl.handle ot_named", "ot_seen_all"),
    ]
    first = dict(handled[0].attributes or {})
    assert first["esctl.correlation_id"] == correlation
    assert first["esctl.causation_id"] == causation
    assert first["esctl.handler"] == "_on_opened"
    assert first["esctl.position"] == 1
    assert "esctl.causation_id" not in dict(handled[2].attributes or {})


def test_a_failing_handler_records_the_error_on_its_span(spans: InMemorySpanExporter) -> None:
    class Failing(Projector):
        name = "ot_failing"

        @handles(OtOpened)
        def _boom(self, event: Event, tx: Any) -> None:
            raise RuntimeError("boom")

    store = open_store("memory://")
    store.append([OtOpened(aggregate_id=str(uuid.uuid4()))])
    with pytest.raises(Exception, match="boom"):
        process_available(Failing(), store)
    [span] = [s for s in spans.get_finished_spans() if s.name.startswith("esctl.handle")]
    assert not span.status.is_ok
    assert any(e.name == "exception" for e in span.events)


def test_without_the_api_nothing_is_wrapped() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from esctl_lib.telemetry import enabled, trace_dispatch\n"
        "from esctl_lib.repository import Repository\n"
        "table = {'t': (print,)}\n"
        "assert not enabled() and trace_dispatch(object(), table) is table\n"
        "assert Repository.save.__wrapped__ is not None\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.stdout == "ok\n", done.stderr
