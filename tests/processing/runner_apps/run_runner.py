"""Run esctl's runner in this process: ``python -m tests.processing.runner_apps.run_runner``.

Exits with the runner's exit code. The settings are built from the arguments as
`esctl run`'s flags would be (no config file), then the application as the CLI builds it.
"""

from __future__ import annotations

import argparse
import sys

from esctl_lib import configure_logging, load_app, run_processors
from tests.processing.runner_apps.support import settings_for


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
    settings = settings_for(args.url, *args.processors, schema=args.schema, hook=args.hook,
                            retry=args.retry, grace=args.grace)
    configure_logging(settings)
    sys.exit(run_processors(load_app(settings), once=args.once))


if __name__ == "__main__":
    main()
