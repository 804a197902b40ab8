"""The example's command-line front, run as a person would (``python examples/todo/todo.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.todo.conftest import EXAMPLE
from tests.todo.e2e import Deployment, deploy

pytestmark = pytest.mark.slow

TODO = [sys.executable, str(EXAMPLE / "todo.py")]


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    with deploy("sqlite", tmp_path) as deployed:
        yield deployed


def todo(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TODO, *args], env=deployment.env(), capture_output=True,
                          text=True, timeout=60, check=False)


def test_an_added_todo_is_listed_once_the_processors_ran(deployment: Deployment) -> None:
    todo_id = todo(deployment, "add", "Pay rent", "--due-date", "2030-02-01").stdout.strip()
    deployment.esctl("run", "--once")
    listed = json.loads(todo(deployment, "list", "scheduled", "--json").stdout)
    assert [(t["todo_id"], t["title"], t["due_date"]) for t in listed] == [
        (todo_id, "Pay rent", "2030-02-01")
    ]


def test_a_completed_todo_leaves_the_outstanding_list(deployment: Deployment) -> None:
    todo_id = todo(deployment, "add", "Pay rent").stdout.strip()
    assert todo(deployment, "complete", todo_id, "--on", "2030-02-01").returncode == 0
    deployment.esctl("run", "--once")
    assert json.loads(todo(deployment, "list", "outstanding", "--json").stdout) == []


def test_invalid_input_exits_2_with_one_line(deployment: Deployment) -> None:
    result = todo(deployment, "add", "Pay rent", "--due-date", "soon")
    assert (result.returncode, result.stderr) == (
        2, "todo: error: due_date is not a date (use YYYY-MM-DD): 'soon'\n"
    )


def test_a_command_the_rules_refuse_exits_1_naming_the_todo(deployment: Deployment) -> None:
    missing = "7b0f4a9e-0000-4000-8000-000000000000"
    result = todo(deployment, "abandon", missing)
    assert (result.returncode, result.stderr) == (1, f"todo: error: todo {missing} does not exist\n")
