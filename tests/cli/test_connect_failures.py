"""``esctl`` against a store it cannot reach: one line naming the cause, no password, the
documented exit code (3 when the settings are wrong, 1 when the server is unreachable), at
once or within ``[store] connect_timeout``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from esctl.exit_codes import CONFIG, FAILURE
from tests.backends import require_postgres
from tests.cli.conftest import Cli, one_error_line

CONNECT_TIMEOUT = 2.0


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(project: Path, url: str, *args: str) -> tuple[int, str, str, float]:
    cli = Cli({"ESCTL_STORE__URL": url, "ESCTL_STORE__CONNECT_TIMEOUT": str(CONNECT_TIMEOUT)})
    started = time.monotonic()
    result = cli(*args)
    took = time.monotonic() - started
    return result.exit_code, one_error_line(result), result.output, took


CASES = {
    "unknown database": ("postgresql://postgres:secret@127.0.0.1:5432/esctl_no_such_db",
                         'database "esctl_no_such_db" does not exist', CONFIG),
    "unknown role": ("host=127.0.0.1 user=esctl_no_such_role password=secret dbname=test",
                     'role "esctl_no_such_role" does not exist', CONFIG),
    "bad sslmode": ("postgresql://postgres@127.0.0.1:5432/test?sslmode=bogus&password=secret",
                    'invalid sslmode value: "bogus"', CONFIG),
    "unknown host": ("postgresql://postgres:secret@nonexistent.invalid/test",
                     'could not translate host name "nonexistent.invalid"', FAILURE),
}


@pytest.mark.parametrize("command", [("tail",), ("status",)])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_store_that_cannot_be_reached_names_the_cause_in_one_line(
    case: str, command: tuple[str, ...], project: Path
) -> None:
    require_postgres()
    url, cause, code = CASES[case]
    exit_code, line, output, took = run(project, url, *command)
    assert exit_code == code
    assert line.startswith("esctl: error: cannot connect to PostgreSQL at ")
    assert cause in line
    assert "secret" not in output
    assert "WARNING" not in output
    assert took < (1.5 if code == CONFIG else CONNECT_TIMEOUT + 1.5)


def test_a_refused_connection_is_exit_1_within_the_connect_timeout(project: Path) -> None:
    port = closed_port()
    exit_code, line, output, took = run(
        project, f"postgresql://postgres:secret@127.0.0.1:{port}/test", "tail")
    assert exit_code == FAILURE
    assert line.startswith(f"esctl: error: cannot connect to PostgreSQL at 127.0.0.1:{port}: "
                           "connection refused")
    assert "secret" not in output
    assert took <= CONNECT_TIMEOUT + 1.5


def test_ctrl_c_while_connecting_exits_130_promptly(project: Path) -> None:
    with socket.socket() as server:  # accepts connections and never answers
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        server.settimeout(60)
        port = server.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
        env.update({"ESCTL_STORE__URL": f"postgresql://postgres:secret@127.0.0.1:{port}/test",
                    "ESCTL_STORE__CONNECT_TIMEOUT": "30"})
        child = subprocess.Popen([sys.executable, "-m", "esctl", "tail", "--follow"],
                                 cwd=project, env=env, stderr=subprocess.PIPE, text=True)
        try:
            accepted, _ = server.accept()  # the child is connecting now (left unanswered)
            started = time.monotonic()
            child.send_signal(signal.SIGINT)
            code = child.wait(timeout=60)
            took = time.monotonic() - started
            accepted.close()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert code == 130
    assert took < 1.5
