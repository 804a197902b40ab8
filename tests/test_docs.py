"""Docs that cannot drift: every registered command has help with an example and is in the
README's command reference (generated from --help with cog), and the README's exit codes
are esctl/exit_codes.py's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from esctl import exit_codes
from esctl.main import app
from esctl.reference import command_names, command_reference, exit_code_table, help_text

README = Path(__file__).resolve().parents[1] / "README.md"
REGISTERED = command_names()


def readme() -> str:
    return README.read_text(encoding="utf-8")


def test_commands_are_found_by_asking_the_app() -> None:
    assert len(REGISTERED) >= 10
    assert all(REGISTERED)


@pytest.mark.parametrize("name", REGISTERED)
def test_every_registered_command_has_help_with_an_example(name: str) -> None:
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0
    summary = result.stdout.split("\n\n")[1].strip()
    assert summary  # a one-line description under the usage line
    example = result.stdout.split("Example:", 1)
    assert len(example) == 2, f"esctl {name} --help has no example"
    assert f"esctl {name}" in example[1]


@pytest.mark.parametrize("name", REGISTERED)
def test_every_registered_command_is_in_the_readme_reference_and_overview(name: str) -> None:
    text = readme()
    assert f"### `esctl {name}`" in text
    assert help_text(name) in text
    assert f"| `{name}` |" in text  # the overview table


def test_the_readme_reference_lists_exactly_the_registered_commands() -> None:
    listed = re.findall(r"^### `esctl (\w+)`$", readme(), re.M)
    assert listed == REGISTERED


def test_the_readme_command_reference_is_what_cog_generates() -> None:
    assert command_reference() in readme()  # else run: .venv/bin/cog -r README.md


def _readme_exit_codes() -> dict[int, str]:
    table = readme().split("| code | meaning |", 1)[1].split("<!--", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", table, re.M)
    return {int(code): meaning for code, meaning in rows}


def test_the_readme_exit_codes_are_those_of_exit_codes_py() -> None:
    assert _readme_exit_codes() == exit_codes.MEANINGS
    assert exit_code_table() in readme()


def test_every_exit_code_constant_has_a_documented_meaning() -> None:
    constants = {value for name, value in vars(exit_codes).items()
                 if name.isupper() and isinstance(value, int)}
    assert constants == set(exit_codes.MEANINGS)
