"""Operations behind the ``esctl`` commands: each command calls one of these functions.

They take explicit values (a store, processors, settings) and report progress through
callbacks; they never print.

Each name is imported on first use (PEP 562), so a command loads only its own operation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from esctl_lib._lazy import lazy_exports

if TYPE_CHECKING:
    from esctl_lib.operations.append import append_one
    from esctl_lib.operations.init import config_template, init_config
    from esctl_lib.operations.processors import (
        parked_events,
        rebuild_state,
        replay_processor,
        reset_processor,
        retry_parked_events,
        setup_all,
        skip_event,
    )
    from esctl_lib.operations.records import event_json, event_record, parse_body
    from esctl_lib.operations.running import run_processors
    from esctl_lib.operations.snapshots import discard_snapshots, list_snapshots
    from esctl_lib.operations.status import ProcessorStatus, StatusReport, status_report
    from esctl_lib.operations.streams import aggregate_events, tail_events
    from esctl_lib.operations.trace import Trace, TraceNode, trace_events
    from esctl_lib.operations.transfer import ImportResult, export_events, import_events
    from esctl_lib.operations.types import EventTypeInfo, TypesReport, event_types

_LAZY: dict[str, str] = {
    "EventTypeInfo": "esctl_lib.operations.types",
    "ImportResult": "esctl_lib.operations.transfer",
    "ProcessorStatus": "esctl_lib.operations.status",
    "StatusReport": "esctl_lib.operations.status",
    "Trace": "esctl_lib.operations.trace",
    "TraceNode": "esctl_lib.operations.trace",
    "TypesReport": "esctl_lib.operations.types",
    "aggregate_events": "esctl_lib.operations.streams",
    "append_one": "esctl_lib.operations.append",
    "config_template": "esctl_lib.operations.init",
    "discard_snapshots": "esctl_lib.operations.snapshots",
    "event_json": "esctl_lib.operations.records",
    "event_record": "esctl_lib.operations.records",
    "event_types": "esctl_lib.operations.types",
    "export_events": "esctl_lib.operations.transfer",
    "import_events": "esctl_lib.operations.transfer",
    "init_config": "esctl_lib.operations.init",
    "list_snapshots": "esctl_lib.operations.snapshots",
    "parked_events": "esctl_lib.operations.processors",
    "parse_body": "esctl_lib.operations.records",
    "rebuild_state": "esctl_lib.operations.processors",
    "replay_processor": "esctl_lib.operations.processors",
    "reset_processor": "esctl_lib.operations.processors",
    "retry_parked_events": "esctl_lib.operations.processors",
    "run_processors": "esctl_lib.operations.running",
    "setup_all": "esctl_lib.operations.processors",
    "skip_event": "esctl_lib.operations.processors",
    "status_report": "esctl_lib.operations.status",
    "tail_events": "esctl_lib.operations.streams",
    "trace_events": "esctl_lib.operations.trace",
}

__all__ = [
    "EventTypeInfo",
    "ImportResult",
    "ProcessorStatus",
    "StatusReport",
    "Trace",
    "TraceNode",
    "TypesReport",
    "aggregate_events",
    "append_one",
    "config_template",
    "discard_snapshots",
    "event_json",
    "event_record",
    "event_types",
    "export_events",
    "import_events",
    "init_config",
    "list_snapshots",
    "parked_events",
    "parse_body",
    "rebuild_state",
    "replay_processor",
    "reset_processor",
    "retry_parked_events",
    "run_processors",
    "setup_all",
    "skip_event",
    "status_report",
    "tail_events",
    "trace_events",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
