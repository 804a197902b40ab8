"""``esctl status`` imports only what it needs (start-up time, issue 14 part 5).

Each command runs in a fresh interpreter, as a user runs it, against a real SQLite store
(and the real PostgreSQL server for the psycopg case), and reports ``sys.modules`` at exit:
the SQLite path must not import psycopg, and no command may import another command's
module, pydantic, Rich (off a terminal), Typer (a plain status line), the runner, the
async store or the rebuild.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from esctl_lib import open_store
from tests.backends import POSTGRES_DSN

APP = '''
from esctl_lib import Event, handles
from esctl_lib.processing import Projector


class ImportsHappened(Event, type_name="imports_happened"):
    pass


class Counting(Projector):
    name = "counting"

    @handles(ImportsHappened)
    def _on(self, event, tx):
        pass
'''

#: Run esctl in-process in a fresh interpreter, then print the modules it imported.
PROBE = """
import json, sys
sys.argv = ["esctl", *sys.argv[1:]]
import esctl.main
code = 0
try:
    esctl.main.run()
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""

COMMAND_MODULES = {"esctl.commands.project", "esctl.commands.stream",
                   "esctl.commands.transfer", "esctl.commands.types", "esctl.commands.trace",
                   "esctl.commands.snapshots"}
#: Never needed to show a status: the settings library, the runner, the async store, the
#: worker loop and its batching (the processors' classes load, not what runs them).
HEAVY = {"pydantic", "pydantic_settings", "typer._adapters", "esctl_lib.runner",
         "esctl_lib.aio", "esctl_lib.stores.aio", "multiprocessing",
         "esctl_lib.processing.worker", "esctl_lib.processing.batching",
         # the rebuild itself: status reads its record (processing.rebuilds)
         "esctl_lib.processing.rebuild"}
#: What the PostgreSQL store imports only when used: shadow tables (a rebuild), the schema
#: files (setup), LISTEN/NOTIFY (appends and waits) and the trace queries.
POSTGRES_UNUSED = {"esctl_lib.stores.shadow", "esctl_lib.stores.postgres.shadow",
                   "esctl_lib.stores.schema_files", "esctl_lib.stores.postgres.listen",
                   "esctl_lib.stores.postgres.trace"}

#: Typer, Click and the CLI built on them: esctl.main.run answers a plain status itself.
NO_TYPER = {"typer", "click", "esctl.cli", "esctl.parser", "esctl.commands.processing"}


def project(folder: Path, url: str, schema: str | None = None) -> Path:
    (folder / "importsapp.py").write_text(APP)
    store = [f'url = "{url}"'] + ([f'schema = "{schema}"'] if schema else [])
    (folder / "eventsourcery.toml").write_text(
        "[store]\n" + "\n".join(store) + "\n[app]\n"
        f'paths = ["{folder}"]\nevents = ["importsapp"]\n'
        'processors = ["importsapp:Counting"]\n')
    with open_store(url, schema=schema) as store_:
        store_.setup()
    return folder


def imported(folder: Path, *args: str) -> tuple[int, set[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    env.pop("FORCE_COLOR", None)
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return int(report["code"] or 0), set(report["modules"]), done.stdout


def loaded(modules: set[str], names: set[str]) -> set[str]:
    return {m for m in modules if m in names or m.split(".")[0] in names}


@pytest.mark.parametrize("args", [("status",), ("status", "--json"),
                                  ("status", "--check", "--max-lag", "0"),
                                  ("status", "counting")])
def test_status_on_sqlite_imports_neither_psycopg_nor_what_it_does_not_need(
        tmp_path: Path, args: tuple[str, ...]) -> None:
    folder = project(tmp_path, f"sqlite:///{tmp_path / 'events.db'}")
    code, modules, out = imported(folder, *args)
    assert code == 0, out
    assert "esctl_lib.operations.status" in modules  # the probe saw the command run
    assert not loaded(modules, {"psycopg", "psycopg_pool", "psycopg_binary"})
    assert not loaded(modules, HEAVY)
    assert not modules & COMMAND_MODULES
    assert "rich" not in modules  # off a terminal the table is plain text
    assert not loaded(modules, NO_TYPER)  # a plain status line is parsed without Typer


def test_the_table_off_a_terminal_is_what_the_command_prints(tmp_path: Path) -> None:
    folder = project(tmp_path, f"sqlite:///{tmp_path / 'events.db'}")
    _, _, out = imported(folder, "status")
    assert "\nprocessor ┃ kind" in out
    assert "counting  │ projector" in out


def test_version_imports_no_command_module(tmp_path: Path) -> None:
    code, modules, out = imported(tmp_path, "--version")
    assert code == 0 and out.startswith("esctl ")
    assert not modules & {*COMMAND_MODULES, "esctl.commands.processing"}
    assert not loaded(modules, {"esctl_lib", "psycopg", "rich", *HEAVY})


@pytest.mark.postgres
def test_status_on_postgres_imports_psycopg_but_nothing_else_it_does_not_need(
        tmp_path: Path) -> None:
    schema = f"status_imports_{os.getpid()}"
    folder = project(tmp_path, POSTGRES_DSN, schema)
    try:
        code, modules, out = imported(folder, "status")
        assert code == 0, out
        assert "psycopg" in modules
        assert not loaded(modules, HEAVY)
        assert not modules & POSTGRES_UNUSED
        assert not loaded(modules, {"esctl_lib.stores.sqlite"})  # another backend
        assert not modules & COMMAND_MODULES
        assert "rich" not in modules
        assert not loaded(modules, NO_TYPER)
    finally:
        import psycopg

        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
