"""esctl export and import: JSON lines with every field, SQLite to PostgreSQL and back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from esctl_lib import Event, EventRegistry, EventStore
from tests.backends import drop_schema
from tests.cli.conftest import (
    AGGREGATE,
    OTHER,
    Backend,
    Cli,
    add,
    make_backend,
    one_error_line,
    readable,
    total,
    write_config,
)

CORRELATION = "11111111-2222-4333-8444-555555555555"
CAUSATION = "99999999-8888-4777-8666-555555555555"


def fill(store: EventStore) -> None:
    from cliapp.events import ItemAdded, ItemRemoved

    store.append([ItemAdded(aggregate_id=AGGREGATE, body={"name": "pen", "n": [1, 2.5]},
                            correlation_id=CORRELATION, causation_id=CAUSATION,
                            metadata={"tenant": "t1"})])
    store.append([ItemAdded(aggregate_id=OTHER, body={"name": "ünïcode ✓"}),
                  ItemRemoved(aggregate_id=OTHER)])
    [last] = store.append([Event(type="legacy_type", aggregate_id=AGGREGATE, body={})])
    readable(store, last.id or 0)


def fields(store: EventStore) -> list[dict[str, object]]:
    return [e.to_dict() for e in store.iter_range(0)]


@pytest.fixture
def sqlite_and_postgres(tmp_path: Path) -> Iterator[tuple[Backend, Backend]]:
    source = make_backend("sqlite", tmp_path)
    target = make_backend("postgres", tmp_path)
    try:
        yield source, target
    finally:
        for b in (source, target):
            for store in b.opened:
                store.close()
        drop_schema(target.schema or "")


def test_a_sqlite_store_exported_and_imported_into_postgres_is_identical(
    sqlite_and_postgres: tuple[Backend, Backend], project: Path
) -> None:
    source, target = sqlite_and_postgres
    raw = EventRegistry()
    source_store, target_store = source.open(registry=raw), target.open(registry=raw)
    source_store.setup()
    target_store.setup()
    fill(source_store)
    write_config(project)
    assert Cli(source.env())("export", "backup.jsonl").exit_code == 0
    result = Cli(target.env())("import", "backup.jsonl", "--allow-unknown-type")
    assert result.exit_code == 0, result.output
    readable(target_store, source_store.latest_position())
    assert fields(target_store) == fields(source_store)


def test_export_writes_one_line_per_event_with_every_field(cli: Cli, backend: Backend) -> None:
    fill(backend.open())
    lines = cli("export").stdout.splitlines()
    assert len(lines) == 4
    assert set(json.loads(lines[0])) == {
        "id", "uuid", "aggregate_id", "type", "body", "version", "created_at",
        "correlation_id", "causation_id", "metadata"}


def test_export_can_take_a_slice_by_type_and_position(cli: Cli, backend: Backend) -> None:
    fill(backend.open())
    lines = cli("export", "--type", "cli_item_added", "--from", "1").stdout.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [2]


def test_import_from_stdin(cli: Cli, backend: Backend, project: Path) -> None:
    fill(backend.open())
    exported = cli("export").stdout
    other = make_backend("sqlite", project)
    other.open().setup()
    result = Cli(other.env())("import", "-", "--allow-unknown-type", input=exported)
    assert result.exit_code == 0, result.output
    assert total(other.open()) == 4


def test_import_again_skips_events_already_stored(cli: Cli, backend: Backend,
                                                  project: Path) -> None:
    fill(backend.open())
    (project / "x.jsonl").write_text(cli("export").stdout)
    result = cli("import", "x.jsonl", "--allow-unknown-type", "--json")
    assert json.loads(result.stdout) == {"imported": 0, "skipped": 4}
    assert total(backend.open()) == 4


def test_an_interrupted_import_can_be_rerun(cli: Cli, backend: Backend, project: Path) -> None:
    fill(backend.open())
    (project / "x.jsonl").write_text(cli("export").stdout)
    other = make_backend("sqlite", project)
    other_cli = Cli(other.env())
    other.open().setup()
    head = "".join((project / "x.jsonl").read_text().splitlines(keepends=True)[:2])
    other_cli("import", "-", "--allow-unknown-type", input=head)
    result = other_cli("import", "x.jsonl", "--allow-unknown-type", "--json")
    assert json.loads(result.stdout) == {"imported": 2, "skipped": 2}
    readable(other.open(), 4)
    assert fields(other.open(registry=EventRegistry())) == fields(
        backend.open(registry=EventRegistry()))


def _line(**changes: object) -> str:
    record: dict[str, object] = {
        "uuid": "4adc00aa-5b8b-4231-abd9-79a2908db64b", "aggregate_id": AGGREGATE,
        "type": "cli_item_added", "body": {"name": "x"}, "version": 1,
        "created_at": "2024-05-01T10:00:00.000000+00:00",
    }
    record.update(changes)
    return json.dumps(record)


BAD_IMPORTS = {
    "malformed JSON": ("{nope", "line 2: not valid JSON"),
    "missing field": (_line(uuid=None), "line 2: missing field(s) uuid"),
    "body not an object": (_line(uuid="6e1d2c3b-4a59-4687-9a1b-2c3d4e5f6a7b", body=[1]),
                    "body must be a JSON object"),
    "bad UUID": (_line(uuid="xyz"), "line 2: uuid must be a UUID"),
    "unknown type": (_line(uuid="6e1d2c3b-4a59-4687-9a1b-2c3d4e5f6a7b", type="mystery"),
                     "unknown event type 'mystery'"),
    "version gap": (_line(uuid="6e1d2c3b-4a59-4687-9a1b-2c3d4e5f6a7b", version=3),
                    "jumps from version 1 to 3"),
}


@pytest.mark.parametrize("case", list(BAD_IMPORTS))
def test_bad_import_input_exits_2_and_writes_nothing(case: str, cli: Cli, backend: Backend,
                                                     project: Path) -> None:
    write_config(project)
    bad, message = BAD_IMPORTS[case]
    (project / "bad.jsonl").write_text(_line() + "\n" + bad + "\n")
    result = cli("import", "bad.jsonl")
    assert result.exit_code == 2
    assert message in one_error_line(result)
    assert total(backend.open()) == 0


def test_import_refuses_versions_that_do_not_continue_the_store(
    cli: Cli, backend: Backend, project: Path
) -> None:
    write_config(project)
    add(backend.open(), "ItemAdded", AGGREGATE, name="already here")
    (project / "in.jsonl").write_text(_line() + "\n")
    result = cli("import", "in.jsonl")
    assert result.exit_code == 2
    assert "is at version 1 in the store" in one_error_line(result)
    assert total(backend.open()) == 1


def test_import_of_a_missing_file_exits_2(cli: Cli, backend: Backend) -> None:
    result = cli("import", "missing.jsonl", "--allow-unknown-type")
    assert result.exit_code == 2
    assert "cannot read" in one_error_line(result)


def test_export_into_a_missing_folder_is_one_line_and_leaves_nothing(
    cli: Cli, backend: Backend, project: Path
) -> None:
    fill(backend.open())
    result = cli("export", str(project / "missing" / "backup.jsonl"))
    assert result.exit_code == 1
    assert "cannot write" in one_error_line(result)
    assert not (project / "missing").exists()


def test_import_off_a_terminal_logs_its_progress(cli: Cli, backend: Backend) -> None:
    fill(backend.open())
    exported = cli("export").stdout
    other = make_backend("sqlite", Path.cwd())
    other.open().setup()
    result = Cli(other.env())("import", "--allow-unknown-type", input=exported)
    assert "import: 4/4 events" in result.stderr


def test_export_on_a_terminal_draws_a_progress_bar(
    cli: Cli, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(backend.open())
    monkeypatch.setattr("esctl.render.is_terminal", lambda stream: True)
    result = cli("export", "out.jsonl")
    assert result.exit_code == 0, result.output
    assert "4/4" in result.stderr
    assert len(Path("out.jsonl").read_text().splitlines()) == 4
