"""The layering contract in pyproject.toml ([tool.importlinter]) holds: a plain pytest run
enforces it, as CI's ``lint-imports`` does."""

from __future__ import annotations

import re
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


_BACKEND_TEST = re.compile(
    r"\bdialect\b|\bbackend\s*(==|!=|in\b)|[=!]=\s*[\"'](memory|sqlite|postgres(ql)?)[\"']")


def _outside_the_stores() -> list[Path]:
    library = [p for p in (ROOT / "esctl_lib").rglob("*.py")
               if "stores" not in p.relative_to(ROOT / "esctl_lib").parts]
    return [*library, *(ROOT / "esctl").rglob("*.py")]


def test_nothing_outside_the_stores_asks_which_backend_it_has() -> None:
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path in _outside_the_stores()
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if _BACKEND_TEST.search(line)]
    assert found == []


def test_no_module_of_the_library_imports_itself_back() -> None:
    # import-linter's acyclic_siblings compares siblings only; this sees every module,
    # lazy (function-level) imports included, so a package importing a sub-module that
    # imports the package back is caught too.
    import grimp

    graph = grimp.build_graph("esctl_lib", exclude_type_checking_imports=True)
    cycles = sorted(
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=imported, imported=module)
    )
    assert cycles == []
