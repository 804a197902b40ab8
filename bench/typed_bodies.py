"""What validating typed bodies costs on the write path users call (issue 16).

Driven through the public API as an application would: a command method builds each event
through ``Aggregate.apply`` and ``Repository.save(aggregate)`` appends the changes with
their expected version. Three variants of the same ~100-byte body (the anchor bench's) run
side by side in one run, alternating in chunks so that load from elsewhere hurts them alike:

  untyped     ``Item(aggregate_id=..., body={...})``: the baseline.
  typed-model ``class ItemT(Event, body=ItemBody)``, the command builds ``ItemBody(...)``
              (validated once by pydantic, dumped once by the event).
  typed-dict  the same typed class given the dict: validated from the dict, then dumped.

  W1  single-event saves with expected version, over 1,000 aggregates.
  W2  saves of 100 events for one aggregate.

Printed: events/s per variant (best of ``--reps``), typed / untyped by the wall clock, by
this process's CPU time and as the median over neighbouring chunks, then one summary line
per workload with the target (typed / untyped >= 0.9).

    python bench/typed_bodies.py                       # SQLite (FULL), 3 repetitions
    python bench/typed_bodies.py --backend postgres    # ESCTL_TEST_POSTGRES_DSN
    python bench/typed_bodies.py --backend memory --scale 2

``--loop VARIANT WORKLOAD EVENTS`` runs one variant's loop alone and prints its CPU time
per event: for instruction counts on a loaded machine, run it under callgrind twice with
two event counts and divide the difference (deterministic, unlike the clock)::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python bench/typed_bodies.py --loop typed-model W2 3000   # minus the same at 1000
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from esctl_lib import Aggregate, Event, EventRegistry, EventStore, Repository, handles, open_store

DSN = os.environ.get("ESCTL_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
CHUNKS = 10
VARIANTS = ("untyped", "typed-model", "typed-dict")
REGISTRY = EventRegistry()


class ItemBody(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    sku: str
    qty: int
    price: Decimal
    note: str


class Item(Event, type_name="bench_item", registry=REGISTRY):
    pass


class ItemT(Event, type_name="bench_item_typed", body=ItemBody, registry=REGISTRY):
    pass


def body_dict(i: int) -> dict[str, Any]:
    return {"name": "widget", "sku": f"W-{i:06d}", "qty": 3, "price": "10.50", "note": "x" * 24}


class Stock(Aggregate):
    def __init__(self, aggregate_id: Any, events: Any = ()) -> None:
        self.qty = 0
        super().__init__(aggregate_id, events)

    def add_untyped(self, i: int) -> None:
        self.apply(Item(aggregate_id=self.id, body=body_dict(i)))

    def add_model(self, i: int) -> None:
        self.apply(ItemT(aggregate_id=self.id, body=ItemBody(
            name="widget", sku=f"W-{i:06d}", qty=3, price=Decimal("10.50"), note="x" * 24)))

    def add_dict(self, i: int) -> None:
        self.apply(ItemT(aggregate_id=self.id, body=body_dict(i)))

    @handles(Item)
    def _item(self, event: Event) -> None:
        self.qty += event.body["qty"]

    @handles(ItemT)
    def _item_t(self, event: Event) -> None:
        self.qty += event.data.qty


COMMANDS: dict[str, Callable[[Stock, int], None]] = {
    "untyped": Stock.add_untyped, "typed-model": Stock.add_model, "typed-dict": Stock.add_dict,
}


@contextmanager
def fresh_store(backend: str) -> Iterator[EventStore]:
    if backend == "memory":
        store = open_store("memory://", registry=REGISTRY)
        store.setup()
        yield store
        store.close()
    elif backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            store = open_store(f"sqlite:///{Path(folder) / 'bench.db'}", registry=REGISTRY)
            store.setup()
            yield store
            store.close()
    else:
        schema = f"bench_typed_{uuid.uuid4().hex[:8]}"
        store = open_store(DSN, schema=schema, registry=REGISTRY)
        store.setup()
        try:
            yield store
        finally:
            store.close()
            import psycopg

            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def w1_chunk(repo: Repository, stocks: list[Stock], command: Callable[[Stock, int], None],
             count: int, start: int) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds)."""
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(start, start + count):
        stock = stocks[i % len(stocks)]
        command(stock, i)
        repo.save(stock)
    return time.perf_counter() - t0, time.process_time() - c0


def w2_chunk(repo: Repository, command: Callable[[Stock, int], None], saves: int,
             batch: int) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(saves):
        stock = Stock(uuid.uuid4())
        for i in range(batch):
            command(stock, i)
        repo.save(stock)
    return time.perf_counter() - t0, time.process_time() - c0


Rates = dict[str, dict[str, float]]
#: typed / untyped wall-clock speed of each pair of neighbouring chunks, per workload and variant.
CHUNK_RATIOS: dict[str, dict[str, list[float]]] = {
    w: {v: [] for v in VARIANTS[1:]} for w in ("W1", "W2")}


def one_rep(backend: str, w1_events: int, w2_events: int, rep: int) -> tuple[Rates, Rates]:
    """events/s of each variant for W1 and W2 in one repetition (chunks interleaved): by
    the wall clock, and by this process's CPU time."""
    with fresh_store(backend) as store:
        repo = Repository(store)
        stocks = {v: [Stock(uuid.uuid4()) for _ in range(1000)] for v in VARIANTS}
        wall = {w: dict.fromkeys(VARIANTS, 0.0) for w in ("W1", "W2")}
        cpu = {w: dict.fromkeys(VARIANTS, 0.0) for w in ("W1", "W2")}
        per_chunk_w1 = max(1, w1_events // CHUNKS)
        saves_w2 = max(1, w2_events // 100 // CHUNKS)
        for chunk in range(CHUNKS):
            order = VARIANTS if (chunk + rep) % 2 == 0 else tuple(reversed(VARIANTS))
            took: dict[str, dict[str, float]] = {"W1": {}, "W2": {}}
            for v in order:
                w, c = w1_chunk(repo, stocks[v], COMMANDS[v], per_chunk_w1, chunk * per_chunk_w1)
                wall["W1"][v] += w
                cpu["W1"][v] += c
                took["W1"][v] = w
            for v in order:
                w, c = w2_chunk(repo, COMMANDS[v], saves_w2, 100)
                wall["W2"][v] += w
                cpu["W2"][v] += c
                took["W2"][v] = w
            for workload, times in took.items():
                for v in VARIANTS[1:]:
                    CHUNK_RATIOS[workload][v].append(times["untyped"] / times[v])
        counts = {"W1": per_chunk_w1 * CHUNKS, "W2": saves_w2 * 100 * CHUNKS}
    return ({w: {v: counts[w] / wall[w][v] for v in VARIANTS} for w in counts},
            {w: {v: counts[w] / max(cpu[w][v], 1e-9) for v in VARIANTS} for w in counts})


def pydantic_floor_us(loops: int = 20000, reps: int = 7) -> float:
    """Microseconds per event that pydantic itself needs for a typed body, whatever esctl
    does around it: building the model (its validation) and dumping it to the JSON text
    that is stored, by pydantic-core's own validator and serializer (best of ``reps``)."""
    validate = ItemBody.__pydantic_validator__.validate_python
    dump = ItemBody.__pydantic_serializer__.to_json
    data = body_dict(0)
    data["price"] = Decimal("10.50")
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(loops):
            dump(validate(data))
        best = min(best, (time.perf_counter() - start) / loops)
    return best * 1e6


def run_loop(backend: str, variant: str, workload: str, events: int) -> None:
    """One variant's W1 or W2 loop alone (after a short warm-up), for callgrind."""
    with fresh_store(backend) as store:
        repo = Repository(store)
        command = COMMANDS[variant]
        stocks = [Stock(uuid.uuid4()) for _ in range(100)]
        w1_chunk(repo, stocks, command, 50, 0)
        w2_chunk(repo, command, 1, 100)
        if workload == "W1":
            _, cpu = w1_chunk(repo, stocks, command, events, 50)
        else:
            _, cpu = w2_chunk(repo, command, max(1, events // 100), 100)
    print(f"{variant} {workload} {events} events: {cpu / events * 1e6:.2f} us CPU/event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "memory"), default="sqlite")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="W1 3,000 and W2 30,000 events at 1.0")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--loop", nargs=3, metavar=("VARIANT", "WORKLOAD", "EVENTS"),
                        help="run one loop alone (variants: " + ", ".join(VARIANTS) + ")")
    args = parser.parse_args()
    if args.loop:
        variant, workload, events = args.loop
        if variant not in VARIANTS or workload not in ("W1", "W2"):
            parser.error(f"--loop: variant one of {', '.join(VARIANTS)}, workload W1 or W2")
        run_loop(args.backend, variant, workload, int(events))
        return
    w1, w2 = int(3000 * args.scale), int(30000 * args.scale)
    results = [one_rep(args.backend, w1, w2, r) for r in range(args.reps)]
    print(f"backend {args.backend}, W1 {w1} events, W2 {w2} events, best of {args.reps}")
    for clock, index in (("wall clock", 0), ("client CPU time", 1)):
        reps = [r[index] for r in results]
        print(f"-- {clock}")
        for workload in ("W1", "W2"):
            best = {v: max(r[workload][v] for r in reps) for v in VARIANTS}
            per_rep = {v: [r[workload][v] / r[workload]["untyped"] for r in reps]
                       for v in VARIANTS[1:]}
            print(f"{workload}: " + ", ".join(f"{v} {best[v]:,.0f}/s" for v in VARIANTS))
            for v in VARIANTS[1:]:
                ratios = ", ".join(f"{x:.2f}" for x in per_rep[v])
                print(f"  {v} / untyped: best {best[v] / best['untyped']:.2f} "
                      f"(per repetition {ratios}; target >= 0.9)")
    floor = pydantic_floor_us()
    untyped_w2 = 1e6 / max(r[0]["W2"]["untyped"] for r in results)
    print(f"-- pydantic's own part: validate + dump to JSON text {floor:.2f} us/event; an "
          f"untyped W2 event {untyped_w2:.2f} us (the typed path skips the store's walk "
          "and dump of the body, so it may come close to 1.0)")
    print("-- median over neighbouring chunks (wall clock; robust to bursts of load)")
    for workload, by_variant in CHUNK_RATIOS.items():
        print(f"{workload}: " + ", ".join(
            f"{v} / untyped {statistics.median(r):.2f} ({len(r)} pairs)"
            for v, r in by_variant.items()))
    print("-- summary: typed / untyped (median of neighbouring chunks; CPU time, best rep)")
    cpu_reps = [r[1] for r in results]
    for workload, by_variant in CHUNK_RATIOS.items():
        parts = []
        for v, ratios in by_variant.items():
            cpu_best = (max(r[workload][v] for r in cpu_reps)
                        / max(r[workload]["untyped"] for r in cpu_reps))
            parts.append(f"{v} {statistics.median(ratios):.2f} (CPU {cpu_best:.2f})")
        worst = min(statistics.median(r) for r in by_variant.values())
        print(f"{workload} typed / untyped: {', '.join(parts)}; target >= 0.9: "
              f"{'met' if worst >= 0.9 else 'NOT met'}")


if __name__ == "__main__":
    main()
