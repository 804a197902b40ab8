"""The public API is what esctl_lib.__all__ says: locked here so changes are deliberate."""

import esctl_lib

FOUNDATION = {
    "Aggregate", "AggregateError", "BodyEncoder", "ConcurrencyError", "ConfigError",
    "DuplicateEventError", "DuplicateEventTypeError", "EsctlError", "Event", "EventError",
    "EventRegistry", "EventStore", "InvalidEventError", "Page", "ProcessingError",
    "ProcessorLockedError", "Repository", "SchemaError", "SerializationError", "StoreError",
    "StoreUnavailableError", "TrackerError", "Transaction", "UnknownEventError",
    "UnknownEventTypeError", "collect_handlers", "default_encoder", "default_registry",
    "handles", "mask_url", "open_store", "type_name_for",
}


def test_all_is_sorted_and_unique() -> None:
    assert esctl_lib.__all__ == sorted(set(esctl_lib.__all__))


def test_every_exported_name_exists() -> None:
    missing = [name for name in esctl_lib.__all__ if not hasattr(esctl_lib, name)]
    assert missing == []


def test_the_foundation_api_is_exported() -> None:
    assert set(esctl_lib.__all__) >= FOUNDATION


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
