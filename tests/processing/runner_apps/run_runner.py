"""Run esctl's runner in this process: ``python -m tests.processing.runner_apps.run_runner``.

Exits with the runner's exit code. Processors are import paths.
"""

from __future__ import annotations

import argparse
import logging
import sys

from esctl_lib.processing.runner import LOG_FORMAT, run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("processors", nargs="+")
    parser.add_argument("--schema")
    parser.add_argument("--grace", type=float, default=30.0)
    parser.add_argument("--hook")
    parser.add_argument("--retry", default="exponential")
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    sys.exit(run(args.url, args.processors, schema=args.schema, grace_period=args.grace,
                 startup_hook=args.hook, retry=args.retry, once=args.once))


if __name__ == "__main__":
    main()
