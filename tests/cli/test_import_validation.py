"""`esctl import` checks the whole file before the first write, and `esctl append` checks its
body: a value no store can hold is exit 2, one line naming the line and the field, and
nothing is written (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.cli.conftest import AGGREGATE, Backend, Cli, one_error_line, total, write_config


@pytest.fixture(autouse=True)
def _config(project: Path) -> None:
    write_config(project)  # the test app's event types are registered


GOOD_LINES = 2000
BAD_LINE = 1500
DEEP = "[" * 600 + "]" * 600
VERY_DEEP = "[" * 100_000 + "]" * 100_000

#: A bad body (JSON text, as it sits in the file) -> what the error says after ``line N: ``.
BAD_BODIES = {
    "NaN": ('{"amount": NaN}', "body.amount: nan is not a finite number"),
    "Infinity": ('{"amount": Infinity}', "body.amount: inf is not a finite number"),
    "-Infinity": ('{"amount": -Infinity}', "body.amount: -inf is not a finite number"),
    "1e400": ('{"amount": 1e400}', "body.amount: inf is not a finite number"),
    "lone surrogate": ('{"name": "\\ud800"}', "body.name: not valid Unicode"),
    "NUL": ('{"name": "a\\u0000b"}', "body.name: contains \\u0000"),
    "2**63": (f'{{"n": {2**63}}}', "body.n: integer 9223372036854775808 is out of range"),
    "5000 digits": ('{"n": ' + "9" * 5000 + "}", "more than 4300 digits"),
    "nested 600 deep": ('{"a": ' + DEEP + "}", "nested deeper than 64 levels"),
    "nested 100000 deep": ('{"a": ' + VERY_DEEP + "}", "nested too deeply to read"),
    "surrogate key": ('{"\\udfff": 1}', "not valid Unicode"),
}


def record(version: int, body: str = '{"name": "x"}', **fields: str) -> str:
    base = {"uuid": str(uuid.uuid4()), "aggregate_id": AGGREGATE, "type": "cli_item_added",
            "version": version, "created_at": "2026-01-01T00:00:00+00:00"}
    text = json.dumps(base | fields)
    return text[:-1] + f', "body": {body}}}'


def export_with_bad_line(path: Path, bad: str) -> Path:
    """2000 events of one aggregate; line 1500 is ``bad`` (a whole line)."""
    lines = [record(v) for v in range(1, GOOD_LINES + 1)]
    lines[BAD_LINE - 1] = bad
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def assert_refused(result: object, backend: Backend, expected: str) -> None:
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    line = one_error_line(result)  # type: ignore[arg-type]
    assert expected in line
    assert total(backend.open()) == 0


@pytest.mark.parametrize(("body", "expected"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_an_import_with_one_bad_body_writes_nothing_and_names_line_and_field(
        cli: Cli, backend: Backend, project: Path, body: str, expected: str) -> None:
    path = export_with_bad_line(project / "in.jsonl", record(BAD_LINE, body))
    result = cli("import", str(path), "--yes")
    assert_refused(result, backend, f"line {BAD_LINE}: ")
    assert expected in result.stderr


BAD_FIELDS = {
    "metadata NaN": (record(BAD_LINE)[:-1] + ', "metadata": {"m": NaN}}',
                     "metadata.m: nan is not a finite number"),
    "metadata NUL": (record(BAD_LINE)[:-1] + ', "metadata": {"m": "\\u0000"}}',
                     "metadata.m: contains \\u0000"),
    "version beyond integer": (record(2**31), "version must be a whole number from 1"),
    "created_at out of range": (record(BAD_LINE, created_at="0001-01-01T00:00:00+01:00"),
                                "created_at is not an ISO 8601 time in range"),
}


@pytest.mark.parametrize(("line", "expected"), BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_an_import_with_one_bad_field_writes_nothing(
        cli: Cli, backend: Backend, project: Path, line: str, expected: str) -> None:
    path = export_with_bad_line(project / "in.jsonl", line)
    result = cli("import", str(path), "--yes", "--allow-unknown-type")
    assert_refused(result, backend, f"line {BAD_LINE}: {expected}")


def test_an_import_from_stdin_is_checked_whole_before_the_first_write(
        cli: Cli, backend: Backend, project: Path) -> None:
    path = export_with_bad_line(project / "in.jsonl", record(BAD_LINE, '{"a": NaN}'))
    result = cli("import", "-", "--yes", input=path.read_text(encoding="utf-8"))
    assert_refused(result, backend, f"line {BAD_LINE}: body.a: nan is not a finite number")


#: What `esctl append` let through before (the store's own check caught the others).
APPEND_BODIES = {k: v for k, v in BAD_BODIES.items()
                 if k not in ("lone surrogate", "NUL", "2**63", "surrogate key")}


@pytest.mark.parametrize(("body", "expected"), APPEND_BODIES.values(),
                         ids=APPEND_BODIES.keys())
def test_append_of_a_bad_body_is_one_line_exit_2_and_writes_nothing(
        cli: Cli, backend: Backend, project: Path, body: str, expected: str) -> None:
    (project / "body.json").write_text(body, encoding="utf-8")
    result = cli("append", "cli_item_added", "--aggregate", AGGREGATE, "--body", "@body.json")
    assert_refused(result, backend, expected)


@pytest.mark.parametrize(("bad", "expected"), [
    (record(BAD_LINE, '{"a": NaN}').encode(), "body.a: nan is not a finite number"),
    (record(BAD_LINE, '{"a": "@"}').encode().replace(b"@", b"\xff"),
     "not UTF-8 text (byte 0xff"),
], ids=["NaN", "not UTF-8"])
def test_an_import_piped_to_a_real_process_is_spooled_and_checked_whole(
        backend: Backend, project: Path, bad: bytes, expected: str) -> None:
    lines = [record(v).encode() for v in range(1, GOOD_LINES + 1)]
    lines[BAD_LINE - 1] = bad
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    env |= {k: v for k, v in backend.env().items() if v is not None}
    done = subprocess.run([sys.executable, "-m", "esctl", "import", "-", "--yes"],
                          input=b"\n".join(lines) + b"\n", capture_output=True, cwd=project,
                          env=env, timeout=120, check=False)
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, stderr
    [line] = stderr.splitlines()
    assert line.startswith(f"esctl: error: line {BAD_LINE}: ")
    assert expected in stderr
    assert total(backend.open()) == 0
