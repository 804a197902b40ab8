"""``esctl status`` without Typer (``esctl/status.py``) behaves as the Typer app does.

The entry point (``esctl.main.run``) runs a plain ``esctl status`` itself and hands every
other command line to Typer. Each case runs both ways in a fresh interpreter on a real
SQLite project, and the exit code, stdout and stderr must be the same; the entry point
must not have imported Typer when it could parse the line, and must have when it could not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from esctl.status import parse_status
from tests.cli.test_status_imports import project

#: Run argv through the entry point ("run") or through the Typer app ("typer").
PROBE = """
import json, sys
mode, args = sys.argv[1], sys.argv[2:]
sys.argv = ["esctl", *args]
code = 0
try:
    if mode == "run":
        import esctl.main
        esctl.main.run()
    else:
        from esctl.cli import app
        app(args)
except SystemExit as e:
    code = e.code
sys.stdout.flush()
print(json.dumps({"code": code, "typer": "typer" in sys.modules}), file=sys.stderr)
"""


def run(folder: Path, mode: str, *args: str) -> tuple[int, str, str, bool]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    env.pop("FORCE_COLOR", None)
    done = subprocess.run([sys.executable, "-c", PROBE, mode, *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    *err, last = done.stderr.splitlines()
    report = json.loads(last)
    return int(report["code"] or 0), done.stdout, "\n".join(err), bool(report["typer"])


FAST = [
    ("status",),
    ("status", "--json"),
    ("status", "--check"),
    ("status", "--check", "--max-lag", "0", "--max-lag-seconds", "2.5"),
    ("status", "--max-lag=+7", "--stale-after=30", "--json"),
    ("status", "counting"),
    ("status", "counting", "--json"),
    ("--log-level", "debug", "status", "--check"),
    ("status", "--check", "--config", "eventsourcery.toml"),
    ("-c", "eventsourcery.toml", "status"),
    ("status", "nope"),  # an unknown processor: exit 2 (its typer.Exit, from fail())
    ("--config", "missing.toml", "status"),  # exit 3
    ("status", "--store-url", "nonsense://x"),  # exit 3
]
TYPER = [
    ("status", "--help"),
    ("status", "-h"),
    ("--version",),
    ("status", "--max-lag", "-1"),
    ("status", "--max-lag", "abc"),
    ("status", "--max-lag", "1_000"),
    ("status", "--max-lag-seconds", "1e3"),
    ("status", "--max-lag"),
    ("status", "--check", "--check"),
    ("status", "--check=1"),
    ("status", "a", "b"),
    ("status", "--nope"),
    ("status", "--", "counting"),
    ("--json", "status"),
    ("-ceventsourcery.toml", "status"),
    ("stat",),
    (),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("fast")
    return project(tmp, f"sqlite:///{tmp / 'events.db'}")


@pytest.mark.parametrize("args", FAST, ids=" ".join)
def test_a_plain_status_runs_without_typer_as_typer_runs_it(folder: Path,
                                                            args: tuple[str, ...]) -> None:
    *fast, fast_typer = run(folder, "run", *args)
    *slow, _ = run(folder, "typer", *args)
    assert fast == slow
    assert not fast_typer or args == ("status", "nope")


@pytest.mark.parametrize("args", TYPER, ids=" ".join)
def test_anything_else_goes_to_typer(folder: Path, args: tuple[str, ...]) -> None:
    *fast, fast_typer = run(folder, "run", *args)
    *slow, _ = run(folder, "typer", *args)
    assert fast == slow
    assert fast_typer


def test_the_cases_cover_what_they_claim() -> None:
    codes = {args: parse_status(args) for args in FAST + TYPER}
    assert all(codes[args] is not None for args in FAST)
    assert all(codes[args] is None for args in TYPER)
    assert parse_status(["--schema", "s", "status", "n", "--max-lag=3", "--stale-after",
                         "1.5", "--json", "--store-url=u"]) == {
        "schema": "s", "name": "n", "max_lag": 3, "stale_after": 1.5, "as_json": True,
        "store_url": "u"}
    assert parse_status(["-c", "x.toml", "status"]) == {"config": Path("x.toml")}


def test_shell_completion_goes_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    from esctl.status import fast_status

    monkeypatch.setenv("_ESCTL_COMPLETE", "bash_source")
    assert fast_status(["status"]) is None
