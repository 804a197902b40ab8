"""``esctl status`` tells the truth (issue 11, item 3): red stays red until a processor
processes successfully, ``--check`` for probes, ``status NAME`` in detail, lag that counts
events not yet readable, and a table that fits a 100-column terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cliapp.events import ItemAdded
from cliapp.processors import Exploder

from esctl_lib import Event, Transaction, handles
from tests.cli.conftest import (
    AGGREGATE,
    OTHER,
    Backend,
    Cli,
    add,
    one_error_line,
    write_config,
)
from tests.cli.test_processing_commands import EXPLODER, fill, postgres  # noqa: F401

LONG_NAME = "outstanding_todos_per_customer_and_region"
LONG_FAILER = f"{__name__}:LongNamedFailer"


class LongNamedFailer(Exploder):
    """A long name, and an error of many long lines."""

    name = LONG_NAME

    @handles(ItemAdded)
    def _added(self, event: Event, tx: Transaction) -> None:
        if event.body.get("explode"):
            raise RuntimeError("a very long error message " * 12 + "\n" +
                               "\n".join(f"detail line {i}" for i in range(15)))


def failing_cli(cli: Cli, project: Path, backend: Backend, *processors: str) -> Cli:
    write_config(project, processors=processors or (EXPLODER,),
                 extra='[processing]\nretry = "none"\n')
    add(backend.open(), "ItemAdded", AGGREGATE, name="bomb", explode=True)
    assert cli("run", "--once").exit_code != 0
    return cli


def as_json(cli: Cli, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("status", "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def test_a_failed_run_once_stays_red_past_the_stale_threshold(
    cli: Cli, project: Path, backend: Backend
) -> None:
    failing_cli(cli, project, backend)
    code, data = as_json(cli, "--stale-after", "0")
    [row] = data["processors"]
    assert code == 1 and data["healthy"] is False
    assert "boom on bomb" in row["last_error"] and row["problems"]


def test_check_prints_one_line_per_reason_and_exits_1(
    cli: Cli, project: Path, backend: Backend
) -> None:
    write_config(project, processors=("cliapp.processors:ItemList",
                                      "cliapp.processors:Noticer"))
    fill(backend.open())
    result = cli("status", "--check", "--max-lag", "1")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["cli_items: lag 4 events exceeds 1",
                                          "cli_noticer: lag 3 events exceeds 1"]


def test_check_exits_0_and_says_ok_when_healthy(cli: Cli, project: Path,
                                                backend: Backend) -> None:
    write_config(project, processors=("cliapp.processors:ItemList",))
    fill(backend.open())
    assert cli("run", "--once").exit_code == 0
    result = cli("status", "--check", "--max-lag", "0", "--max-lag-seconds", "3600")
    assert (result.exit_code, result.stdout) == (0, "ok: 1 processor(s) healthy\n")


def test_check_with_json_lists_the_reasons(cli: Cli, project: Path, backend: Backend) -> None:
    failing_cli(cli, project, backend)
    code, data = as_json(cli, "--check")
    assert code == 1
    [reason] = data["problems"]
    assert reason.startswith("cli_exploder: failing") and "boom on bomb" in reason


def test_a_lag_age_limit_is_a_reason(cli: Cli, project: Path, backend: Backend) -> None:
    write_config(project, processors=("cliapp.processors:ItemList",))
    fill(backend.open())
    result = cli("status", "--check", "--max-lag-seconds", "0")
    assert result.exit_code == 1
    assert result.stdout.startswith("cli_items: lag ") and "exceeds 0 s" in result.stdout


def test_status_name_shows_one_processor_in_detail(cli: Cli, project: Path,
                                                   backend: Backend) -> None:
    failing_cli(cli, project, backend, LONG_FAILER)
    result = cli("status", LONG_NAME)
    assert result.exit_code == 1
    fields = {text.split(":", 1)[0] for text in result.stdout.splitlines()
              if not text.startswith(" ")}
    assert {"processor", "state", "host", "pid", "heartbeat", "position", "lag", "parked",
            "tables", "rebuild", "last error", "traceback"} <= fields
    assert "Traceback (most recent call last)" in result.stdout
    assert "detail line 14" in result.stdout  # the full error, not a summary
    code, data = as_json(cli, LONG_NAME)
    assert code == 1 and data["name"] == LONG_NAME and "RuntimeError" in data["traceback"]


def test_status_of_an_unknown_processor_is_a_usage_error(cli: Cli, project: Path) -> None:
    write_config(project, processors=(EXPLODER,))
    result = cli("status", "nope")
    assert result.exit_code == 2
    assert "no processor named 'nope'" in one_error_line(result)


def test_the_table_fits_100_columns_with_names_whole(cli: Cli, project: Path,
                                                     backend: Backend) -> None:
    failing_cli(cli, project, backend, LONG_FAILER, "cliapp.processors:ItemList")
    result = cli("status", env={"COLUMNS": "100"})
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert max(len(text) for text in lines) <= 100, result.stdout
    assert any(LONG_NAME in text for text in lines)
    assert not any("detail line" in text for text in lines)  # one line per error
    assert sum("ProcessingEr" in text for text in lines) == 1, result.stdout


def test_the_table_shows_one_store_head(cli: Cli, project: Path, backend: Backend) -> None:
    write_config(project, processors=("cliapp.processors:ItemList",
                                      "cliapp.processors:Noticer"))
    fill(backend.open())
    assert cli("run", "--once").exit_code == 0
    _, data = as_json(cli)
    assert {p["head"] for p in data["processors"]} == {data["store"]["head"]}
    [header] = [t for t in cli("status").stdout.splitlines() if t.startswith("processor")]
    assert "head" not in header


def test_debug_logging_prints_the_traceback_of_a_failure_in_user_code(
    cli: Cli, project: Path, backend: Backend
) -> None:
    write_config(project, processors=(EXPLODER,), extra='[processing]\nretry = "none"\n')
    add(backend.open(), "ItemAdded", OTHER, name="bomb", explode=True)
    result = cli("--log-level", "debug", "run", "--once")
    assert result.exit_code != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert 'raise RuntimeError(f"boom on' in result.stderr


def test_lag_counts_events_behind_an_open_postgresql_transaction(
    postgres: Backend, project: Path  # noqa: F811
) -> None:
    write_config(project, processors=("cliapp.processors:ItemList",))
    cli = Cli(postgres.env())
    with postgres.open().transaction() as other:  # may append, has written: readers wait
        other.will_append()
        other.set_tracker("cli_blocker", 0)
        postgres.open().append([ItemAdded(aggregate_id=AGGREGATE, body={"name": "late"})
                                for _ in range(3)])
        code, data = as_json(cli, "--check", "--max-lag", "2")
        check = cli("status", "--check", "--max-lag", "2")
    [row] = data["processors"]
    assert row["lag_events"] >= 3 and row["waiting_events"] >= 3
    assert code == 1 and check.exit_code == 1
    assert "not yet readable" in check.stdout
