"""The tracker SQL every SQL backend shares (a mixin over the raw-SQL contract).

A backend whose stream order is not id order (PostgreSQL) overrides :meth:`set_tracker`.
"""

from __future__ import annotations

import time

from esctl_lib.errors import TrackerError
from esctl_lib.stores.base import Transaction


class SqlTrackers(Transaction):
    """``get/set/advance/reset_tracker`` in portable SQL over ``execute``/``fetchone``."""

    def get_tracker(self, name: str) -> int:
        row = self.fetchone(
            f"SELECT position FROM trackers WHERE name = {self.placeholder}", (name,)
        )
        return int(row[0]) if row else 0

    def set_tracker(self, name: str, position: int) -> None:
        p = self.placeholder
        changed = self.execute(
            f"INSERT INTO trackers (name, position, updated_at) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
            "updated_at = excluded.updated_at WHERE trackers.position <= excluded.position",
            (name, position, time.time()),
        )
        if changed == 0:
            raise TrackerError(
                f"tracker {name!r} is past position {position}; reset it to move it back"
            )

    def advance_tracker(self, name: str, expected: int, position: int) -> None:
        p = self.placeholder
        now = time.time()
        changed = self.execute(
            f"UPDATE trackers SET position = {p}, updated_at = {p} "
            f"WHERE name = {p} AND position = {p}",
            (position, now, name, expected),
        )
        if changed != 1 and expected == 0:
            changed = self.execute(
                f"INSERT INTO trackers (name, position, updated_at) VALUES ({p}, {p}, {p}) "
                "ON CONFLICT (name) DO NOTHING",
                (name, position, now),
            )
        if changed != 1:
            raise TrackerError(
                f"tracker {name!r} moved away from position {expected} (now at "
                f"{self.get_tracker(name)}) while this batch ran; is another instance running?"
            )

    def reset_tracker(self, name: str, position: int = 0) -> None:
        p = self.placeholder
        self.execute(
            f"INSERT INTO trackers (name, position, updated_at) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
            "updated_at = excluded.updated_at",
            (name, position, time.time()),
        )
