"""The public API is what esctl_lib.__all__ says: locked here so changes are deliberate,
and the CLI reaches the library only through it."""

import ast
from pathlib import Path

import esctl_lib

CLI = Path(__file__).resolve().parents[1] / "esctl"

#: The public API, exactly: a name added or removed here is a deliberate API change.
PUBLIC_API = [
    "Aggregate",
    "AggregateError",
    "Application",
    "AsyncEventStore",
    "AsyncRepository",
    "BatchTransaction",
    "BodyEncoder",
    "ConcurrencyError",
    "ConfigError",
    "DuplicateEventError",
    "DuplicateEventTypeError",
    "EsctlError",
    "Event",
    "EventError",
    "EventRegistry",
    "EventStore",
    "EventTypeInfo",
    "IdempotencyError",
    "ImportResult",
    "InvalidEventError",
    "Page",
    "ParkedEvent",
    "ProcessingError",
    "Processor",
    "ProcessorLock",
    "ProcessorLockedError",
    "ProcessorState",
    "ProcessorStatus",
    "Projector",
    "Reactor",
    "ReaderHorizon",
    "RebuildResult",
    "RebuildState",
    "Repository",
    "RetryPolicy",
    "Runner",
    "RunnerSettings",
    "SchemaError",
    "SerializationError",
    "Settings",
    "Snapshot",
    "SnapshotInfo",
    "StatusReport",
    "StoreError",
    "StoreUnavailableError",
    "Tables",
    "Trace",
    "TraceNode",
    "TrackerError",
    "Transaction",
    "TypesReport",
    "UnknownEventError",
    "UnknownEventTypeError",
    "aggregate_events",
    "append_one",
    "collect_handlers",
    "command_event_uuid",
    "command_result",
    "config_template",
    "configure_logging",
    "default_encoder",
    "default_registry",
    "discard_snapshots",
    "event_json",
    "event_record",
    "event_types",
    "export_events",
    "handles",
    "handles_all",
    "import_events",
    "init_config",
    "is_locked",
    "list_snapshots",
    "load_app",
    "load_events",
    "load_settings",
    "lock_holder",
    "mask_url",
    "open_async_store",
    "open_configured_store",
    "open_store",
    "open_tables",
    "parked_events",
    "parse_body",
    "process_available",
    "processor_lock",
    "read_state",
    "read_states",
    "rebuild_state",
    "record_state",
    "redact_secrets",
    "replay_processor",
    "reset_logging",
    "reset_processor",
    "retry_parked_events",
    "retry_policy",
    "run_processor",
    "run_processors",
    "setup_all",
    "skip_event",
    "status_report",
    "tail_events",
    "trace_events",
    "type_name_for",
    "validate_body",
    "wait_for",
]


def test_all_is_sorted_and_unique() -> None:
    assert esctl_lib.__all__ == sorted(set(esctl_lib.__all__))


def test_every_exported_name_exists() -> None:
    missing = [name for name in esctl_lib.__all__ if not hasattr(esctl_lib, name)]
    assert missing == []


def test_the_public_api_is_exactly_the_locked_list() -> None:
    assert esctl_lib.__all__ == PUBLIC_API


def test_every_error_derives_from_the_root() -> None:
    errors = [getattr(esctl_lib, n) for n in esctl_lib.__all__ if n.endswith("Error")]
    assert all(issubclass(e, esctl_lib.EsctlError) for e in errors)


def test_importing_the_library_does_not_import_ui_or_drivers() -> None:
    import subprocess
    import sys

    code = ("import sys, esctl_lib; bad = [m for m in ('typer', 'rich', 'click', 'psycopg') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def _library_imports(path: Path) -> list[tuple[int, str, str]]:
    """``(line, module, name)`` for every import of esctl_lib in a source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("esctl_lib"):
            found += [(node.lineno, node.module or "", a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, "") for a in node.names
                      if a.name.startswith("esctl_lib")]
    return found


def test_the_cli_imports_only_public_library_names() -> None:
    private = [f"{path.relative_to(CLI.parent)}:{line}: {module} {name}".strip()
               for path in sorted(CLI.rglob("*.py"))
               for line, module, name in _library_imports(path)
               if module != "esctl_lib" or name not in esctl_lib.__all__]
    assert private == []


def test_the_cli_import_check_sees_the_cli() -> None:
    assert sum(len(_library_imports(p)) for p in CLI.rglob("*.py")) > 10
