"""Processors for the shared-read and partition tests (importable by runner children)."""

from __future__ import annotations

import os
from typing import Any

from esctl_lib import Event, handles
from esctl_lib.processing import Projector
from tests.processing.runner_apps.apps import RunnerTick

SEEN_DDL = ("CREATE TABLE IF NOT EXISTS {t} (event_id BIGINT NOT NULL, aggregate_id TEXT "
            "NOT NULL, version BIGINT NOT NULL, worker TEXT NOT NULL)")
ORDER_DDL = ("CREATE TABLE IF NOT EXISTS {t}_order (aggregate_id TEXT PRIMARY KEY, "
             "version BIGINT NOT NULL, out_of_order BIGINT NOT NULL)")


class _Seen(Projector):
    """Notes every event it handles (no key: a doubled event shows as two rows) and counts
    events of an aggregate seen out of version order."""

    table = "seen"
    batch_size = 50

    def __init_subclass__(cls, **kwargs: Any) -> None:
        cls.tables = {cls.table: SEEN_DDL.format(t=cls.table),
                      f"{cls.table}_order": ORDER_DDL.format(t=cls.table)}
        super().__init_subclass__(**kwargs)

    @handles(RunnerTick)
    def _tick(self, event: Event, tx: Any) -> None:
        if event.body.get("fail_in") == self.name:
            raise RuntimeError("this processor fails on this event")
        p, t = tx.placeholder, self.table
        tx.execute(f"INSERT INTO {t} (event_id, aggregate_id, version, worker) "
                   f"VALUES ({p}, {p}, {p}, {p})",
                   (event.id, event.aggregate_id, event.version, f"{self.name}@{os.getpid()}"))
        row = tx.fetchone(f"SELECT version FROM {t}_order WHERE aggregate_id = {p}",
                          (event.aggregate_id,))
        wrong = 0 if (row is None and event.version == 1) or (row is not None \
            and int(row[0]) + 1 == event.version) else 1
        tx.execute(f"INSERT INTO {t}_order (aggregate_id, version, out_of_order) "
                   f"VALUES ({p}, {p}, {p}) ON CONFLICT (aggregate_id) DO UPDATE SET "
                   f"version = excluded.version, out_of_order = {t}_order.out_of_order + "
                   f"excluded.out_of_order", (event.aggregate_id, event.version, wrong))


class SeenA(_Seen):
    name = "seen_a"
    table = "seen_a"


class SeenB(_Seen):
    name = "seen_b"
    table = "seen_b"
    batch_size = 70


class SeenC(_Seen):
    name = "seen_c"
    table = "seen_c"


class Parted(_Seen):
    """Two partitions."""

    name = "parted"
    table = "parted"
    partitions = 2
