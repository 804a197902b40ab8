"""No password is ever printed, whatever form the store's DSN takes (issue 12, item 3).

Each form is given to ``esctl config``, ``config --json`` and ``status`` (debug logging,
in a subprocess as a user runs it) with a store on a closed port of 127.0.0.1, so nothing
real is needed; and ``status`` also succeeds against the test server (trust auth ignores
the password) so the store line it prints is checked too.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from esctl_lib import configure_logging, load_settings, reset_logging
from tests.backends import POSTGRES_DSN, drop_schema, require_postgres
from tests.cli.conftest import Cli

pytest.importorskip("psycopg")

#: The secrets planted in the DSNs: none of them (nor any word of them) may be printed.
SECRETS = ("S3cretUserinfo", "S3cretQuery", "S3cretSsl", "S3cretKeyword", "S3cret Quoted",
           "StrayS3cret", "S3cretFromFile")


def forms(host: str, port: int, user: str, db: str, passfile: Path) -> dict[str, str]:
    """One DSN per form, pointing at ``host:port``."""
    kw = f"host={host} port={port} dbname={db} user={user}"
    return {
        "url-userinfo": f"postgresql://{user}:S3cretUserinfo@{host}:{port}/{db}",
        "url-query": f"postgresql://{user}@{host}:{port}/{db}?password=S3cretQuery",
        "url-sslpassword": f"postgres://{user}@{host}:{port}/{db}?sslmode=disable"
                           "&sslpassword=S3cretSsl",
        "keyword": f"{kw} password=S3cretKeyword",
        "keyword-quoted": f"{kw} password='S3cret Quoted'",
        "keyword-stray-word": f"{kw} password=S3cret StrayS3cret",
        "keyword-passfile": f"{kw} passfile={passfile}",
    }


FORMS = list(forms("h", 1, "u", "d", Path("/p")))


def assert_no_secret(*outputs: str) -> None:
    text = "\n".join(outputs)
    for secret in SECRETS:
        for word in secret.split():
            assert word not in text, f"{word!r} was printed:\n{text}"


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def passfile(tmp_path: Path) -> Path:
    path = tmp_path / "pgpass"
    path.write_text("*:*:*:*:S3cretFromFile\n")
    path.chmod(0o600)
    return path


def unreachable(form: str, closed_port: int, passfile: Path) -> str:
    return forms("127.0.0.1", closed_port, "postgres", "test", passfile)[form]


def esctl(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESCTL_", "PG"))}
    env.update({"ESCTL_STORE__URL": url, "ESCTL_STORE__CONNECT_TIMEOUT": "1"})
    return subprocess.run([sys.executable, "-m", "esctl", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("form", FORMS)
def test_esctl_config_never_prints_a_password(form: str, closed_port: int, passfile: Path,
                                              project: Path) -> None:
    url = unreachable(form, closed_port, passfile)
    result = Cli({"ESCTL_STORE__URL": url})("config")
    assert result.exit_code == 0, result.output
    assert "store.url" in result.stdout
    assert_no_secret(result.stdout, result.stderr)


@pytest.mark.parametrize("form", FORMS)
def test_esctl_config_json_never_prints_a_password(form: str, closed_port: int, passfile: Path,
                                                   project: Path) -> None:
    url = unreachable(form, closed_port, passfile)
    result = Cli({"ESCTL_STORE__URL": url})("config", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)["settings"]["store.url"]["value"]
    assert "***" in shown or "passfile" in shown
    assert_no_secret(result.stdout, result.stderr)


def test_the_passfile_path_is_shown_but_not_what_it_holds(closed_port: int, passfile: Path,
                                                          project: Path) -> None:
    url = unreachable("keyword-passfile", closed_port, passfile)
    result = Cli({"ESCTL_STORE__URL": url})("config", "--json")
    assert json.loads(result.stdout)["settings"]["store.url"]["value"] == url


@pytest.mark.parametrize("form", FORMS)
def test_a_failing_status_at_debug_level_never_prints_a_password(
    form: str, closed_port: int, passfile: Path, tmp_path: Path
) -> None:
    url = unreachable(form, closed_port, passfile)
    result = esctl("--log-level", "debug", "status", url=url, cwd=tmp_path)
    assert result.returncode != 0
    assert "esctl: error: " in result.stderr
    assert_no_secret(result.stdout, result.stderr)


@pytest.fixture
def server_schema() -> Iterator[str]:
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        drop_schema(schema)


@pytest.mark.postgres
@pytest.mark.parametrize("form", ["url-userinfo", "url-query", "keyword", "keyword-quoted"])
def test_status_of_a_reachable_store_shows_it_without_its_password(
    form: str, server_schema: str, passfile: Path, tmp_path: Path
) -> None:
    parts = urlsplit(POSTGRES_DSN)
    url = forms(parts.hostname or "127.0.0.1", parts.port or 5432, parts.username or "postgres",
                parts.path.lstrip("/") or "test", passfile)[form]
    env_schema = ["--schema", server_schema]
    assert esctl(*env_schema, "setup", url=url, cwd=tmp_path).returncode == 0
    text = esctl(*env_schema, "status", url=url, cwd=tmp_path)
    as_json = esctl(*env_schema, "status", "--json", url=url, cwd=tmp_path)
    assert (text.returncode, as_json.returncode) == (0, 0), text.stderr + as_json.stderr
    assert "***" in json.loads(as_json.stdout)["store"]["url"]
    assert_no_secret(text.stdout, text.stderr, as_json.stdout, as_json.stderr)


def test_log_lines_at_debug_level_never_show_the_configured_password(
    tmp_path: Path, closed_port: int, passfile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("ESCTL_")]:
        monkeypatch.delenv(name)
    url = unreachable("keyword-stray-word", closed_port, passfile)
    log_file = tmp_path / "esctl.log"
    settings = load_settings(cwd=tmp_path, overrides={
        "store": {"url": url}, "logging": {"level": "debug", "file": str(log_file)}})
    configure_logging(settings)
    try:
        logger = logging.getLogger("esctl.test")
        logger.debug("connecting to %s", url)
        logger.info('missing "=" after "StrayS3cret" in connection info string')
        try:
            raise RuntimeError(f"cannot connect with {url}")
        except RuntimeError:
            logger.exception("failed")
        logging.getLogger("psycopg.pool").debug("conninfo: %s", url)
    finally:
        reset_logging()
    text = log_file.read_text()
    assert text.count("\n") >= 4 and "Traceback" in text
    assert_no_secret(text)
