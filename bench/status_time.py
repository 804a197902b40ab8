"""``esctl status`` on a 2,000,000-event store (target: <= 0.25 s wall, start-up included).

Builds the store once per backend by bulk SQL (cached between runs: the SQLite file in
``$TMPDIR/esctl-bench-status/``, the PostgreSQL schema ``bench_status_2m``), with two
processors: ``lagging`` at position 0 (every event still to process) and ``current`` at
the head (nothing lags). Each command runs in a fresh process; the best of ``--runs`` wall
times is printed beside two baselines measured in the same run: ``python -c pass`` and
``esctl --version`` (the CLI's own start-up), and a third: the store queries alone
(``status_report`` in a process that has imported and connected already, best of
``--runs``). ``--instructions`` also counts each command's instructions with
``valgrind --tool=callgrind`` (deterministic, so it means something on a shared machine).

    python bench/status_time.py [--backend sqlite|postgres|both] [--events 2000000] [--runs 5]
        [--compare DIR] [--instructions]

``--compare DIR`` also times the same commands with another checkout of esctl first on
``PYTHONPATH`` (e.g. ``git archive main | tar -x -C /tmp/esctl-main``), in the same run.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 0.25
DSN = os.environ.get("ESCTL_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA = "bench_status_2m"
CACHE = Path(tempfile.gettempdir()) / "esctl-bench-status"
APP = '''
from esctl_lib import Event, handles
from esctl_lib.processing import Projector


class BenchHappened(Event, type_name="bench_happened"):
    pass


class Lagging(Projector):
    name = "lagging"

    @handles(BenchHappened)
    def _on(self, event, tx):
        pass


class Current(Projector):
    name = "current"

    @handles(BenchHappened)
    def _on(self, event, tx):
        pass
'''
ESCTL = [sys.executable, "-m", "esctl"]
#: The best CPU time (user + system, of the command's process) of each command timed.
CPU: dict[tuple[tuple[str, ...], str | None], float] = {}


def write_project(folder: Path, url: str, schema: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "benchstatusapp.py").write_text(APP)
    store = [f'url = "{url}"'] + ([f'schema = "{schema}"'] if schema else [])
    (folder / "eventsourcery.toml").write_text(
        "[store]\n" + "\n".join(store) + "\n[app]\n"
        f'paths = ["{folder}"]\nevents = ["benchstatusapp"]\n'
        'processors = ["benchstatusapp:Lagging", "benchstatusapp:Current"]\n')


def build_sqlite(events: int) -> str:
    from esctl_lib import open_store

    path = CACHE / f"events-{events}.db"
    url = f"sqlite:///{path}"
    if path.exists():
        return url
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    with open_store(f"sqlite:///{partial}") as store:
        store.setup()
    started = time.perf_counter()
    db = sqlite3.connect(partial)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO events (id, uuid, aggregate_id, type, body, version, created_at) "
        "SELECT i, printf('%08x-0000-4000-8000-%012x', i / 65536, i), "
        "printf('00000000-0000-4000-8000-%012x', (i - 1) / 10), 'bench_happened', '{}', "
        "(i - 1) % 10 + 1, strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-1 day') FROM n",
        (events,))
    db.execute("INSERT INTO trackers (name, position) VALUES ('lagging', 0), ('current', ?)",
               (events,))
    db.commit()
    db.close()
    partial.rename(path)
    for suffix in ("-wal", "-shm"):
        Path(str(partial) + suffix).unlink(missing_ok=True)
    print(f"  built {path} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return url


def build_postgres(events: int) -> tuple[str, str]:
    import psycopg

    from esctl_lib import open_store

    schema = f"{SCHEMA}_{events}" if events != 2_000_000 else SCHEMA
    with psycopg.connect(DSN, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        if found:
            done = conn.execute(f'SELECT count(*) FROM "{schema}".trackers').fetchone()
            if done and done[0] == 2:
                return DSN, schema
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    with open_store(DSN, schema=schema) as store:
        store.setup()
    started = time.perf_counter()
    with psycopg.connect(DSN) as conn:
        conn.execute(f'SET search_path = "{schema}"')
        conn.execute("SET synchronous_commit = off")
        conn.execute(
            "INSERT INTO events (uuid, aggregate_id, type, body, version, created_at) "
            "SELECT md5('e' || i)::uuid, md5('a' || ((i - 1) / 10))::uuid, 'bench_happened', "
            "'{}', (i - 1) %% 10 + 1, now() - interval '1 day' "
            "FROM generate_series(1, %s) AS i", (events,))
        conn.execute("INSERT INTO trackers (name, position) VALUES ('lagging', 0), "
                     "('current', (SELECT max(id) FROM events))")
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'VACUUM ANALYZE "{schema}".events')
    print(f"  built {schema} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return DSN, schema


def best(cmd: list[str], cwd: Path, runs: int, *, ok: tuple[int, ...] = (0,),
         code: str | None = None) -> float:
    # As installed: bytecode cached (PYTHONDONTWRITEBYTECODE would compile every module
    # of esctl on every start); one unmeasured warm-up run writes it.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ESCTL_") and k != "PYTHONDONTWRITEBYTECODE"}
    if code is not None:
        env["PYTHONPATH"] = code
    subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
    times, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode not in ok:
            raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr}")
    CPU[tuple(cmd), code] = min(cpus)
    return min(times)


def cpu(cmd: list[str], code: str | None = None) -> float:
    return CPU[tuple(cmd), code]


QUERIES = """
import sys, time
from esctl_lib import load_app, load_settings, open_configured_store, status_report
app = load_app(load_settings())
with open_configured_store(app.settings) as store:
    status_report(store, app.processors.values())  # connect, warm the caches
    took = []
    for _ in range(int(sys.argv[1])):
        started = time.perf_counter()
        status_report(store, app.processors.values())
        took.append(time.perf_counter() - started)
print(min(took))
"""


def query_time(folder: Path, runs: int) -> float:
    """The store queries of ``esctl status`` alone: ``status_report`` in-process, best of."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    done = subprocess.run([sys.executable, "-c", QUERIES, str(runs)], cwd=folder, env=env,
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def instructions(cmd: list[str], cwd: Path, code: str | None = None) -> int | None:
    """Instructions the command executes (callgrind's Ir; None without valgrind)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ESCTL_") and k != "PYTHONDONTWRITEBYTECODE"}
    if code is not None:
        env["PYTHONPATH"] = code
    try:
        done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                               *cmd], cwd=cwd, env=env, capture_output=True, text=True)
    except FileNotFoundError:
        return None
    found = [line for line in done.stderr.splitlines() if "Collected :" in line]
    return int(found[-1].rsplit(":", 1)[1]) if found else None


def measure(backend: str, events: int, runs: int, compare: str | None = None,
            counting: bool = False) -> bool:
    if backend == "sqlite":
        url, schema = build_sqlite(events), None
    else:
        url, schema = build_postgres(events)
    folder = CACHE / f"project-{backend}-{events}"
    write_project(folder, url, schema)
    python = best([sys.executable, "-c", "pass"], folder, runs)
    version = best([*ESCTL, "--version"], folder, runs)
    lagging = best([*ESCTL, "status"], folder, runs)
    current = best([*ESCTL, "status", "current"], folder, runs)
    check = best([*ESCTL, "status", "--check", "--max-lag", "1000"], folder, runs, ok=(1,))
    print(f"{backend}: {events:,} events, best of {runs} (wall; CPU of the process)")
    print(f"  python -c pass          {python:6.3f} s  cpu {cpu([sys.executable, '-c', 'pass']):.3f}")
    print(f"  esctl --version         {version:6.3f} s  cpu {cpu([*ESCTL, '--version']):.3f}")
    if backend == "postgres":  # a floor no esctl change can lower: the driver's import
        driver_cmd = [sys.executable, "-c", "import psycopg"]
        driver = best(driver_cmd, folder, runs)
        print(f"  python -c 'import psycopg' {driver:6.3f} s  cpu {cpu(driver_cmd):.3f}  "
              "(the driver's own start-up)")
    for label, took, cmd in (
            ("esctl status", lagging, ["status"]),
            ("esctl status current", current, ["status", "current"]),
            ("esctl status --check", check, ["status", "--check", "--max-lag", "1000"])):
        print(f"  {label:<23} {took:6.3f} s  cpu {cpu([*ESCTL, *cmd]):.3f}  "
              f"({took / python:4.1f}x python, {took - version:+.3f} s over --version)")
    if compare is not None:
        for label, cmd, ok in (("esctl status", ["status"], (0,)),
                               ("esctl status current", ["status", "current"], (0,)),
                               ("esctl status --check", ["status", "--check", "--max-lag",
                                                         "1000"], (1,))):
            took = best([*ESCTL, *cmd], folder, runs, ok=ok, code=compare)
            print(f"  {label:<23} {took:6.3f} s  cpu {cpu([*ESCTL, *cmd], compare):.3f}  "
                  f"(the code in {compare})")
    queries = query_time(folder, runs)
    print(f"  store queries alone     {queries:6.3f} s  (status_report in-process, best of "
          f"{runs}; python -c pass + queries = {python + queries:.3f} s)")
    if counting:
        print("  instructions (callgrind Ir, millions):")
        rows: list[tuple[str, list[str], str | None]] = [
            ("python -c pass", [sys.executable, "-c", "pass"], None),
            ("esctl --version", [*ESCTL, "--version"], None),
            ("esctl status", [*ESCTL, "status"], None)]
        if backend == "postgres":
            rows.insert(1, ("import psycopg", [sys.executable, "-c", "import psycopg"], None))
        if compare is not None:
            rows += [("esctl --version", [*ESCTL, "--version"], compare),
                     ("esctl status", [*ESCTL, "status"], compare)]
        for label, cmd, code in rows:
            count = instructions(cmd, folder, code)
            where = "" if code is None else f"  (the code in {code})"
            print(f"    {label:<21} {'-' if count is None else f'{count / 1e6:7.0f}'}{where}")
    worst = max(lagging, current, check)
    met = worst <= TARGET
    print(f"  esctl status (worst of the three) {worst:.3f} s, target <= {TARGET} s: "
          f"{'met' if met else 'NOT met'}")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compare", metavar="DIR", help="another esctl checkout to time too")
    parser.add_argument("--instructions", action="store_true",
                        help="also count instructions with valgrind (slow, deterministic)")
    args = parser.parse_args()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    results = [measure(b, args.events, args.runs, args.compare, args.instructions)
               for b in backends]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
