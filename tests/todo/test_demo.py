"""The README's first command, step by step, so the newcomer's path cannot rot.

The command is read from README.md (between the demo-command markers). Its install steps
are what this test environment already did; its last step, the demo, runs here for real
with this environment's Python, against a temporary SQLite store.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.todo.conftest import ROOT

pytestmark = pytest.mark.slow

README = ROOT / "README.md"


def readme_demo_steps() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- demo-command -->\s*```\w*\n(.*?)```", text, re.S)
    assert found, "README.md has no command between <!-- demo-command --> markers"
    return [shlex.split(step) for step in found.group(1).strip().split("&&")]


def run_demo(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    program, script = readme_demo_steps()[-1]
    assert program.endswith("python")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    env["ESCTL_STORE__URL"] = f"sqlite:///{tmp_path / 'todo.db'}"
    env["TODO_APP_OUTBOX"] = str(tmp_path / "outbox.jsonl")
    return subprocess.run([sys.executable, script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_the_readme_command_installs_the_project_then_runs_the_demo() -> None:
    steps = readme_demo_steps()
    assert steps[0][1:] == ["-m", "venv", ".venv"]
    assert steps[1][-2:] == ["-e", "."] and "install" in steps[1]
    assert steps[-1] == [".venv/bin/python", "examples/todo/demo.py"]


def test_the_demo_shows_status_the_outstanding_todos_and_the_email(tmp_path: Path) -> None:
    result = run_demo(tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "$ esctl run --once" in out and "todo_completed_notifier" in out
    assert "Outstanding todos (2):" in out
    assert "Clean the gutters" in out and "File taxes" in out
    assert "to partner@example.com: Todo completed: Buy milk" in out


def test_the_demo_runs_again_on_the_same_store(tmp_path: Path) -> None:
    run_demo(tmp_path)
    again = run_demo(tmp_path)
    assert again.returncode == 0, again.stderr
    assert "Outstanding todos (4):" in again.stdout
