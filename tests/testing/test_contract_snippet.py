"""The "run the contract against your own backend" snippet, as a third party would run it.

The snippet is read from ARCHITECTURE.md when that file has one between the markers
``<!-- contract-snippet -->`` and ``<!-- /contract-snippet -->`` (a fenced Python block),
else from the docstring of ``esctl_lib/testing/__init__.py`` (the block after "...against
your own backend (...)::"). The test writes it to a test module of its own and runs pytest
on it in a fresh process, outside this repository's tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import esctl_lib.testing
from esctl_lib.testing import EventStoreContract

ARCHITECTURE = Path(__file__).resolve().parents[2] / "ARCHITECTURE.md"
_DOC_SNIPPET = re.compile(r"against your own backend[^\n]*::\n\n((?:(?: {4}[^\n]*)?\n)+)")
_MD_SNIPPET = re.compile(
    r"<!-- contract-snippet -->\s*```(?:python)?\n(.*?)```\s*<!-- /contract-snippet -->", re.S)


def contract_snippet() -> str:
    """The snippet's code: ARCHITECTURE.md's marked block, else the package docstring's."""
    if ARCHITECTURE.exists():
        in_docs = _MD_SNIPPET.search(ARCHITECTURE.read_text())
        if in_docs:
            return in_docs.group(1)
    found = _DOC_SNIPPET.search(esctl_lib.testing.__doc__ or "")
    assert found, "esctl_lib.testing's docstring lost its contract snippet"
    return textwrap.dedent(found.group(1))


def contract_cases() -> list[str]:
    return sorted(n for n in dir(EventStoreContract) if n.startswith("test_"))


def test_the_snippet_is_a_few_lines_that_subclass_the_contract() -> None:
    code = contract_snippet()
    assert "class Test" in code and "EventStoreContract" in code
    assert len(code.strip().splitlines()) <= 12


@pytest.mark.slow  # the whole contract, on SQLite, in a fresh process
def test_the_snippet_runs_every_contract_case_and_passes(tmp_path: Path) -> None:
    (tmp_path / "test_my_store.py").write_text(contract_snippet())
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_store.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    tail = "\n".join(result.stdout.splitlines()[-25:])
    assert result.returncode == 0, tail
    passed = re.search(r"(\d+) passed", tail)
    # Every case ran (a parametrized case counts once per parameter), and none failed.
    assert passed and int(passed.group(1)) >= len(contract_cases()), tail
    assert "failed" not in tail and "skipped" not in tail, tail


def test_the_helpers_import_without_pytest_and_the_library_without_them() -> None:
    code = ("import sys, esctl_lib; assert 'esctl_lib.testing' not in sys.modules; "
            "import esctl_lib.testing; assert 'pytest' not in sys.modules, 'pytest imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
