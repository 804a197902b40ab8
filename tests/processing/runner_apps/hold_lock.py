"""Take a processor's lock, print "locked", then hold it until killed.

Usage: python -m tests.processing.runner_apps.hold_lock URL SCHEMA NAME
(SCHEMA may be "-" for none.)
"""

from __future__ import annotations

import sys
import time

from esctl_lib import open_store
from esctl_lib.processing.locks import processor_lock


def main() -> None:
    url, schema, name = sys.argv[1:4]
    store = open_store(url, schema=None if schema == "-" else schema)
    lock = processor_lock(store, name)
    if not lock.try_acquire():
        print("busy", flush=True)
        sys.exit(1)
    print("locked", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
