"""The CLI's frame: help with examples, fast start-up, the one error handler, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from esctl import exit_codes
from esctl.context import handle_errors
from esctl.main import app
from esctl_lib import (
    ConcurrencyError,
    ConfigError,
    EsctlError,
    InvalidEventError,
    StoreUnavailableError,
    UnknownEventTypeError,
)
from tests.backends import require_postgres
from tests.cli.conftest import Cli, one_error_line, write_config

# Each registered command's help and example: tests/test_docs.py (from the app, not a list).


def test_the_main_help_lists_every_exit_code_130_included() -> None:
    result = CliRunner().invoke(app, ["--help"])
    for code, meaning in exit_codes.MEANINGS.items():
        assert f"{code:<3}  {meaning}" in result.stdout
    assert "130" in result.stdout


def _run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_importing_the_cli_does_not_import_psycopg(tmp_path: Path) -> None:
    result = _run_python(
        "import esctl.main, sys; assert 'psycopg' not in sys.modules, 'psycopg imported'",
        tmp_path)
    assert result.returncode == 0, result.stderr


def test_help_imports_neither_psycopg_nor_the_application(tmp_path: Path) -> None:
    write_config(tmp_path, processors=("cliapp.processors:ItemList",))
    code = (
        "import sys\n"
        "sys.argv = ['esctl', '--help']\n"
        "import esctl.main\n"
        "try:\n    esctl.main.run()\nexcept SystemExit:\n    pass\n"
        "loaded = [m for m in ('psycopg', 'cliapp', 'pydantic') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    result = _run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr


ERRORS = [
    (ConfigError("bad config"), 3),
    (InvalidEventError("bad input"), 2),
    (UnknownEventTypeError("mystery"), 2),
    (ConcurrencyError("5b6e0c2e-8a4f-4d3e-9b9e-3f1f2a6c7d10", 1, 2), 4),
    (StoreUnavailableError("gone"), 1),
]


@pytest.mark.parametrize(("error", "code"), ERRORS, ids=lambda v: type(v).__name__)
def test_the_error_handler_maps_library_errors_to_exit_codes(error: EsctlError,
                                                             code: int) -> None:
    tiny = typer.Typer()

    @tiny.command()
    @handle_errors
    def fail() -> None:
        raise error

    result = CliRunner().invoke(tiny, [])
    assert result.exit_code == code
    assert one_error_line(result).startswith("esctl: error: ")


def test_the_error_handler_keeps_messages_on_one_line_without_passwords() -> None:
    tiny = typer.Typer()

    @tiny.command()
    @handle_errors
    def fail() -> None:
        raise StoreUnavailableError("cannot reach postgresql://app:hunter2@db/prod\nat all")

    result = CliRunner().invoke(tiny, [])
    line = one_error_line(result)
    assert "hunter2" not in line
    assert "app:***@db" in line


@pytest.mark.postgres
def test_an_unreachable_store_exits_1_without_the_password(project: Path) -> None:
    require_postgres()
    cli = Cli({"ESCTL_STORE__URL": "postgresql://app:hunter2@127.0.0.1:1/nowhere",
               "ESCTL_STORE__CONNECT_TIMEOUT": "1"})
    result = cli("tail")
    assert result.exit_code == 1
    assert "hunter2" not in result.output
    one_error_line(result)
