"""The runner's ``/metrics`` reads its children's prometheus-client files; a file a child
has created but not yet sized (0 bytes: prometheus/client_python#1199), or left so when it
was killed, holds no sample and must not fail the scrape."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from esctl_lib.operations.metrics import _ChildFiles


def _child_counter(folder: Path, pid: int, value: float) -> None:
    """A counter file as a child process writes it."""
    values = MmapedDict(str(folder / f"counter_{pid}.db"))
    key = mmap_key("esctl_probe_total", "esctl_probe_total", ["processor"], ["p"], "probe")
    values.write_value(key, value, time.time())
    values.close()


def test_an_empty_child_file_is_no_sample_and_the_others_are_read(tmp_path: Path) -> None:
    _child_counter(tmp_path, 101, 3.0)
    _child_counter(tmp_path, 102, 4.0)
    (tmp_path / "counter_103.db").touch()  # created, not yet sized (or its child killed)
    registry = CollectorRegistry()
    registry.register(_ChildFiles(str(tmp_path)))  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    assert 'esctl_probe_total{processor="p"} 7.0' in text
