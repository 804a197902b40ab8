"""Partitioned processors: split by aggregate, one tracker/lock/worker per partition."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import uuid
from pathlib import Path

import pytest

from esctl_lib import ConfigError, EventStore
from esctl_lib.operations.processors import replay_processor
from esctl_lib.processing.partitions import (
    check_partition_count,
    parse_partition_name,
    partition_names,
    partition_of,
    partition_processors,
)
from esctl_lib.processing.retry import retry_policy
from esctl_lib.processing.state import read_state
from esctl_lib.processing.worker import run_processor
from esctl_lib.testing import eventually
from tests.backends import StoreSpec
from tests.processing.runner_apps.apps import RunnerTick
from tests.processing.runner_apps.support import shared_backends, start_runner, stop
from tests.processing.scale_apps import Parted

APP = "tests.processing.scale_apps"


def test_the_partition_of_an_aggregate_is_md5_of_its_id() -> None:
    agg = "6f1c1f0e-8a55-4c2b-9a36-0e1c9d6b7a10"
    assert partition_of(agg, 4) == int(hashlib.md5(agg.encode()).hexdigest()[:8], 16) % 4
    assert partition_of(uuid.UUID(agg), 4) == partition_of(agg, 4)
    # The split is even: no partition of 4 gets more than its share by a wide margin.
    sizes = [0] * 4
    for _ in range(4000):
        sizes[partition_of(uuid.uuid4(), 4)] += 1
    assert min(sizes) > 800, sizes


def test_partitions_are_named_for_their_trackers_and_locks() -> None:
    assert partition_names(Parted()) == ["parted#0/2", "parted#1/2"]
    assert [p.name for p in partition_processors(Parted())] == partition_names(Parted())
    found = parse_partition_name("parted#1/2")
    assert found is not None and (found.base, found.index, found.count) == ("parted", 1, 2)
    assert parse_partition_name("plain") is None


def test_partitions_must_be_a_whole_number() -> None:
    with pytest.raises(TypeError, match="partitions"):
        type("Bad", (Parted,), {"partitions": 0})


def append_ticks(store: EventStore, count: int, aggregates: int = 20) -> int:
    ids = [str(uuid.uuid4()) for _ in range(aggregates)]
    last = 0
    for i in range(count):
        last = store.append([RunnerTick(aggregate_id=ids[i % aggregates])])[0].id or 0
    eventually(lambda: store.latest_position() >= last, what="the ticks to be readable")
    return last


def counts(store: EventStore) -> tuple[int, int, int, dict[str, set[int]]]:
    """(rows, distinct events, out-of-order events, partition -> partitions of its rows)."""
    with store.transaction() as tx:
        rows = tx.fetchone("SELECT count(*), count(DISTINCT event_id) FROM parted")
        order = tx.fetchone("SELECT COALESCE(sum(out_of_order), 0) FROM parted_order")
        workers = tx.fetchall("SELECT worker, aggregate_id FROM parted")
    assert rows is not None and order is not None
    split: dict[str, set[int]] = {}
    for worker, agg in workers:
        split.setdefault(str(worker).split("@")[0], set()).add(partition_of(agg, 2))
    return int(rows[0]), int(rows[1]), int(order[0]), split


@shared_backends
def test_every_event_is_handled_by_exactly_one_partition_in_order(store_spec: StoreSpec
                                                                   ) -> None:
    store = store_spec.opened[0]
    head = append_ticks(store, 400)
    Parted().setup(store)  # (concurrent CREATE IF NOT EXISTS races on PostgreSQL)
    stop_all = threading.Event()
    parts = partition_processors(Parted())
    threads = [threading.Thread(target=run_processor, args=(p, store_spec.open()),
                                kwargs={"stop": stop_all, "retry": retry_policy("none"),
                                        "idle_timeout": 0.05}) for p in parts]
    for t in threads:
        t.start()
    try:
        eventually(lambda: all(store.get_tracker(p.name) == head for p in parts),
                   timeout=60, what="both partitions at the head")
    finally:
        stop_all.set()
        for t in threads:
            t.join()
    rows, distinct, wrong, split = counts(store)
    assert (rows, distinct, wrong) == (400, 400, 0)
    assert split == {"parted#0/2": {0}, "parted#1/2": {1}}


def test_replay_rebuilds_every_partition(store_spec: StoreSpec) -> None:
    store = store_spec.opened[0]
    head = append_ticks(store, 100)
    for part in partition_processors(Parted()):
        store.reset_tracker(part.name, 0)
    replay_processor(store, Parted())
    assert [store.get_tracker(n) for n in partition_names(Parted())] == [head, head]
    assert counts(store)[:3] == (100, 100, 0)


def test_a_changed_partition_count_is_refused_until_replayed(store_spec: StoreSpec) -> None:
    store = store_spec.opened[0]
    append_ticks(store, 10)
    replay_processor(store, Parted())  # trackers parted#0/2, parted#1/2
    three = type("Parted3", (Parted,), {"name": "parted", "partitions": 3})()
    with pytest.raises(ConfigError, match="esctl replay parted"):
        check_partition_count(store, three)
    replay_processor(store, three)
    check_partition_count(store, three)
    assert sorted(n for n in store.trackers() if n.startswith("parted")) == [
        "parted#0/3", "parted#1/3", "parted#2/3"]


@shared_backends
@pytest.mark.slow
def test_two_runners_share_the_partitions_and_one_takes_over_from_a_dead_one(
    store_spec: StoreSpec, tmp_path: Path
) -> None:
    store = store_spec.opened[0]
    head = append_ticks(store, 200)
    Parted().setup(store)
    first = start_runner(store_spec, tmp_path, f"{APP}:Parted", log_name="a")
    second = start_runner(store_spec, tmp_path, f"{APP}:Parted", log_name="b")
    names = partition_names(Parted())
    try:
        eventually(lambda: all(store.get_tracker(n) == head for n in names), timeout=60,
                   what="both partitions at the head")
        holders = {n: read_state(store, n) for n in names}
        assert all(s is not None and s.pid for s in holders.values())
        # one live instance per partition: the other runner's child for it is a standby
        victim_pid = holders[names[0]].pid  # type: ignore[union-attr]
        os.kill(victim_pid, signal.SIGSTOP)  # not dead yet: its lock is still held
        os.kill(victim_pid, signal.SIGKILL)
        more = append_ticks(store, 100)
        eventually(lambda: all(store.get_tracker(n) == more for n in names), timeout=90,
                   what="the partitions at the new head, one taken over")
        taker = read_state(store, names[0])
        assert taker is not None and taker.pid != victim_pid
    finally:
        for runner in (first, second):
            if runner.poll() is None:
                stop(runner)
    rows, distinct, wrong, split = counts(store)
    assert (distinct, wrong) == (300, 0)
    assert rows == 300  # exactly once: nothing doubled by the takeover
    assert split == {"parted#0/2": {0}, "parted#1/2": {1}}


def test_status_shows_each_partition(store_spec: StoreSpec) -> None:
    from esctl_lib.operations.status import status_report

    store = store_spec.opened[0]
    head = append_ticks(store, 30)
    replay_processor(store, Parted())
    report = status_report(store, [Parted()])
    assert [(p.name, p.position) for p in report.processors] == [
        ("parted#0/2", head), ("parted#1/2", head)]


def test_partitions_can_be_set_in_the_config(store_spec: StoreSpec, tmp_path: Path) -> None:
    from esctl_lib import load_app
    from tests.processing.runner_apps.support import settings_for

    settings = settings_for(store_spec.url, f"{APP}:SeenA", schema=store_spec.schema)
    settings = type(settings)(**{**{f: getattr(settings, f) for f in (
        "store", "app", "logging", "config_file", "sources")},
        "processing": type(settings.processing)(partitions={"seen_a": 3})})
    (processor,) = load_app(settings).processors.values()
    assert partition_names(processor) == ["seen_a#0/3", "seen_a#1/3", "seen_a#2/3"]
