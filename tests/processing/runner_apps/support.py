"""Helpers shared by the runner tests."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from esctl_lib import Settings, load_settings
from esctl_lib.app import import_path
from esctl_lib.testing import eventually
from tests.backends import StoreSpec

ROOT = Path(__file__).resolve().parents[3]
APPS = "tests.processing.runner_apps.apps"
T = TypeVar("T")

#: The runner needs a store other processes can open: SQLite and PostgreSQL, not memory.
shared_backends = pytest.mark.parametrize("store_spec", ["sqlite", "postgres"], indirect=True)


def settings_for(url: str, *processors: Any, schema: str | None = None,
                 hook: str | None = None, retry: str | None = None,
                 grace: float | None = None) -> Settings:
    """The settings `esctl run` would load for these processors (import paths, names in
    runner_apps.apps, or classes) and options, from flags only (no config file is read)."""
    empty = Path(tempfile.gettempdir()) / "esctl-runner-tests-empty.toml"
    empty.touch()
    refs = [import_path(p) if not isinstance(p, str) else p if ":" in p else f"{APPS}:{p}"
            for p in processors]
    return load_settings(config_path=empty, overrides={
        "store": {"url": url, "schema": schema},
        "app": {"processors": refs, "startup_hook": hook},
        "processing": {"retry": retry, "grace_period": grace},
    })


def python(*args: str, out_dir: Path | None = None, **kwargs: Any) -> subprocess.Popen[str]:
    """Start ``python args...`` in the project root (text pipes unless given files)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if out_dir is not None:
        env["ESCTL_RUNNER_TEST_DIR"] = str(out_dir)
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, text=True, **kwargs)


def hold_lock(spec: StoreSpec, name: str) -> subprocess.Popen[str]:
    """A separate process holding processor ``name``'s lock (kill it to release)."""
    proc = python("-m", "tests.processing.runner_apps.hold_lock", spec.url,
                  spec.schema or "-", name)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "locked", (line, proc.stderr.read() if proc.stderr else "")
    return proc


def start_runner(spec: StoreSpec, out_dir: Path, *processors: str, log_name: str = "runner",
                 **options: Any) -> subprocess.Popen[str]:
    """A runner subprocess for ``processors`` (names in runner_apps.apps); its log goes to
    ``out_dir/<log_name>.log``. Options become flags (``grace=1`` → ``--grace 1``)."""
    args = [spec.url, *(p if ":" in p else f"{APPS}:{p}" for p in processors)]
    if spec.schema:
        args += ["--schema", spec.schema]
    for key, value in options.items():
        args += [f"--{key}"] if value is True else [f"--{key}", str(value)]
    log = (out_dir / f"{log_name}.log").open("a")
    return python("-m", "tests.processing.runner_apps.run_runner", *args, out_dir=out_dir,
                  stdout=log, stderr=log)


def wait_until(check: Callable[[], T], *, timeout: float = 20.0, what: str = "condition",
               proc: subprocess.Popen[str] | None = None) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds,
    or at once if ``proc`` (a runner) exits first."""

    def checked() -> T:
        result = check()
        if not result and proc is not None and proc.poll() is not None:
            raise AssertionError(f"runner exited ({proc.returncode}) before {what}")
        return result

    return eventually(checked, timeout=timeout, what=what)


def stop(proc: subprocess.Popen[str], *, timeout: float = 20.0) -> int:
    """SIGTERM a runner and wait for it (killing it if it hangs); its exit code."""
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
