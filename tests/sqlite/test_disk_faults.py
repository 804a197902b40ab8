"""A full disk is a one-line library error, not an OSError: the processor lock file, the
export file and the log file (ENOSPC in a tiny tmpfs, or /dev/full)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from esctl_lib import (
    ConfigError,
    EsctlError,
    Event,
    StoreUnavailableError,
    export_events,
    init_config,
    open_store,
)

AGG = "8a1c1f5e-7d2a-4e43-9b0e-1a2b3c4d5e6f"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root, as the test machine runs), unmounted afterwards."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here: {done.stderr.decode().strip()}"
        if os.environ.get("CI") == "true":  # CI runs as root: there it must run, never skip
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> None:
    """Write into ``folder`` until the disk is full."""
    with (folder / "filler").open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def test_a_full_disk_while_writing_a_lock_file_is_store_unavailable(
        tiny_disk: Path, tmp_path: Path) -> None:
    db = tiny_disk / "events.db"
    store = open_store(f"sqlite:///{db}", synchronous="OFF")
    try:
        store.setup()
        lock = store.processor_lock("items")
        (tiny_disk / "events.db.locks").mkdir()
        fill(tiny_disk)
        with pytest.raises(StoreUnavailableError, match=r"processor lock 'items'.*No space") \
                as caught:
            lock.try_acquire()
        assert isinstance(caught.value.__cause__, OSError)
        assert not lock.held
    finally:
        store.close()


def test_a_full_disk_while_exporting_is_one_error_and_leaves_no_file(tiny_disk: Path) -> None:
    store = open_store("memory://")
    store.setup()
    store.append([Event(type="disk_test", aggregate_id=AGG, body={"pad": "x" * 2000})
                  for _ in range(700)])  # 1.4 MB of JSON lines, on a 1 MiB disk
    target = tiny_disk / "backup.jsonl"
    with pytest.raises(EsctlError, match=r"cannot write .*backup.jsonl: No space"):
        export_events(store, target)
    assert list(tiny_disk.iterdir()) == []


def test_a_log_file_that_cannot_be_written_is_one_warning_line(tmp_path: Path) -> None:
    script = (
        "import logging\n"
        "from esctl_lib.app import configure_logging\n"
        "from esctl_lib.config import load_settings\n"
        "configure_logging(load_settings(overrides={'logging': {'file': '/dev/full'}}))\n"
        "for i in range(3):\n"
        "    logging.getLogger('esctl_lib.test').warning('line %d', i)\n"
        "print('still running')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "still running\n"
    assert done.stderr.splitlines() == [
        "esctl: warning: cannot write log file /dev/full: No space left on device"]


def test_a_full_disk_while_writing_the_config_is_a_config_error(tiny_disk: Path) -> None:
    fill(tiny_disk)
    with pytest.raises(ConfigError, match=r"cannot write .*eventsourcery\.toml: No space"):
        init_config(tiny_disk)
    assert [p.name for p in tiny_disk.iterdir()] == ["filler"]
