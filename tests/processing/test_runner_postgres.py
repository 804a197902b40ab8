"""PostgreSQL only: a child whose lock session dies takes its lock again, in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from esctl_lib.processing.state import read_state
from tests.backends import POSTGRES_DSN, StoreSpec
from tests.processing.runner_apps.support import start_runner, stop, wait_until

pytestmark = [pytest.mark.parametrize("store_spec", ["postgres"], indirect=True),
              pytest.mark.slow]


def terminate_lock_sessions(name: str) -> int:
    import psycopg

    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name LIKE %s", (f"esctl lock {name} %",),
        ).fetchall()
    return len(rows)


def test_a_child_that_loses_its_lock_session_takes_it_again_in_place(
    store_spec: StoreSpec, tmp_path: Path
) -> None:
    runner = start_runner(store_spec, tmp_path, "TickCounter")
    log = tmp_path / "runner.log"
    try:
        first = wait_until(lambda: (s := read_state(store_spec.opened[0], "tick_counter"))
                           and s.state == "idle" and s.pid, proc=runner, what="idle")
        assert terminate_lock_sessions("tick_counter") == 1
        wait_until(lambda: "took its lock again" in log.read_text(), proc=runner,
                   what="the child to take its lock again")
        state = read_state(store_spec.opened[0], "tick_counter")
        assert state is not None and state.pid == first
        assert "restarting in" not in log.read_text()
    finally:
        stop(runner)
