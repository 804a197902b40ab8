"""Start-up time of ``esctl --help`` (target: under 0.3 s), against raw baselines.

Runs each command several times in fresh processes and prints the median wall time, and
the ratio to a bare ``python -c pass`` measured in the same run. Also checks that the help
paths (``esctl --help``, ``esctl tail --help``) import neither psycopg, pydantic nor Rich.

    python bench/cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

TARGET = 0.3


def wall_time(cmd: list[str], runs: int) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                       check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def heavy_modules(*args: str) -> list[str]:
    code = (
        f"import sys; sys.argv = ['esctl', *{list(args)!r}]\n"
        "import esctl.main\n"
        "try:\n    esctl.main.run()\nexcept SystemExit:\n    pass\n"
        "print(','.join(m for m in ('psycopg', 'pydantic', 'pydantic_settings', 'rich')"
        " if m in sys.modules), file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stderr.strip().splitlines()
    return [m for m in (out[-1] if out else "").split(",") if m]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    esctl = shutil.which("esctl") or os.path.join(os.path.dirname(sys.executable), "esctl")
    python = sys.executable
    baseline = wall_time([python, "-c", "pass"], runs)
    rows = [
        ("python -c pass (baseline)", baseline),
        ("python -c 'import typer'", wall_time([python, "-c", "import typer"], runs)),
        ("python -c 'import esctl.main'", wall_time([python, "-c", "import esctl.main"], runs)),
        ("esctl --help", wall_time([esctl, "--help"], runs)),
        ("esctl tail --help", wall_time([esctl, "tail", "--help"], runs)),
    ]
    print(f"median of {runs} runs each")
    for label, seconds in rows:
        print(f"  {label:<32} {seconds * 1000:7.1f} ms   {seconds / baseline:5.2f}x baseline")
    helped = rows[3][1]
    verdict = "OK" if helped < TARGET else "OVER TARGET"
    print(f"esctl --help: {helped:.3f} s (target < {TARGET} s): {verdict}")
    for args in (["--help"], ["tail", "--help"]):
        heavy = heavy_modules(*args)
        print(f"heavy modules imported by esctl {' '.join(args)}: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
