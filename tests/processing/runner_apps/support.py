"""Helpers shared by the runner tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends import StoreSpec

ROOT = Path(__file__).resolve().parents[3]

#: The runner needs a store other processes can open: SQLite and PostgreSQL, not memory.
shared_backends = pytest.mark.parametrize("store_spec", ["sqlite", "postgres"], indirect=True)


def python(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    """Start ``python args...`` in the project root, text pipes for stdout and stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, *args], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs,
    )


def hold_lock(spec: StoreSpec, name: str) -> subprocess.Popen[str]:
    """A separate process holding processor ``name``'s lock (kill it to release)."""
    proc = python("-m", "tests.processing.runner_apps.hold_lock", spec.url,
                  spec.schema or "-", name)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "locked", (line, proc.stderr.read() if proc.stderr else "")
    return proc
