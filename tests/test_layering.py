"""The layering contract in pyproject.toml ([tool.importlinter]) holds: a plain pytest run
enforces it, as CI's ``lint-imports`` does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_are_kept() -> None:
    # lint-imports itself, in a child process of this interpreter (it edits sys.path).
    code = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    result = subprocess.run(
        [sys.executable, "-c", code, "--no-cache", "--no-logo"], cwd=ROOT,
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_processing_and_operations_never_mention_a_backend_dialect() -> None:
    for package in ("processing", "operations"):
        for path in (ROOT / "esctl_lib" / package).rglob("*.py"):
            assert "dialect" not in path.read_text(encoding="utf-8"), path
