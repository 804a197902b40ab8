"""A child process running HotReactor once to the head, its handler gated by files.

``python -m tests.processing.handlers_outside_child URL SCHEMA|- FOLDER BLOCK_ON``
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from esctl_lib import open_store
from esctl_lib.processing import NoRetry, run_processor
from tests.processing.handlers_outside_apps import FileGate, HotReactor


def main() -> None:
    url, schema, folder, block_on = sys.argv[1:5]
    store = open_store(url, schema=None if schema == "-" else schema)
    reactor = HotReactor(FileGate(Path(folder)), block_on=int(block_on))
    run_processor(reactor, store, stop=threading.Event(), once=True, retry=NoRetry())
    store.close()


if __name__ == "__main__":
    main()
