"""The projectors bench/projector_catchup.py and bench/partitions.py run under the runner
(an importable module: the runner's children import them by path)."""

from __future__ import annotations

import hashlib

from esctl_lib import Event, handles
from esctl_lib.processing import BatchTransaction, Projector

PAGE = 1000
UPSERT = ("INSERT INTO bench_counts (k, n) VALUES ({p}, 1) "
          "ON CONFLICT (k) DO UPDATE SET n = bench_counts.n + 1")


class BenchCounted(Event, type_name="bench_counted"):
    pass


def _counter(i: int) -> type[Projector]:
    table = f"bench_counts_{i}"
    upsert = (f"INSERT INTO {table} (k, n) VALUES ({{p}}, 1) "
              f"ON CONFLICT (k) DO UPDATE SET n = {table}.n + 1")

    class C(Projector):
        name = f"bench_counter_{i}"
        batch_size = PAGE
        tables = {table: f"CREATE TABLE IF NOT EXISTS {table} "
                         "(k TEXT PRIMARY KEY, n BIGINT NOT NULL)"}
        sql = {"?": upsert.format(p="?"), "%s": upsert.format(p="%s")}

        @handles(BenchCounted)
        def _counted(self, event: Event, tx: BatchTransaction) -> None:
            tx.defer(self.sql[tx.placeholder], (event.aggregate_id,))

    C.__name__ = C.__qualname__ = f"Counter{i}"
    return C


Counter0, Counter1, Counter2, Counter3 = (_counter(i) for i in range(4))
COUNTERS = [Counter0, Counter1, Counter2, Counter3]




class Heavy(Projector):
    """A CPU-heavy projector (bench/partitions.py): ``WORK`` sha256 rounds per event, then
    one counter upsert; its partition count comes from ``[processing] partitions``."""

    name = "bench_heavy"
    batch_size = 500
    tables = {"bench_heavy": "CREATE TABLE IF NOT EXISTS bench_heavy "
                             "(k TEXT PRIMARY KEY, n BIGINT NOT NULL)"}
    upsert = ("INSERT INTO bench_heavy (k, n) VALUES ({p}, 1) "
              "ON CONFLICT (k) DO UPDATE SET n = bench_heavy.n + 1")
    sql = {"?": upsert.format(p="?"), "%s": upsert.format(p="%s")}
    WORK = 400

    @handles(BenchCounted)
    def _counted(self, event: Event, tx: BatchTransaction) -> None:
        digest = event.aggregate_id.encode()
        for _ in range(self.WORK):
            digest = hashlib.sha256(digest).digest()
        tx.defer(self.sql[tx.placeholder], (event.aggregate_id,))
