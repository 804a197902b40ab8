"""Operations behind the ``esctl`` commands: each command calls one of these functions.

They take explicit values (a store, processors, settings) and report progress through
callbacks; they never print.
"""

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
