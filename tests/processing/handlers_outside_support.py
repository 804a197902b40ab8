"""Helpers shared by tests/processing/test_handlers_outside_*.py: appending the trigger
events, reading rows back, running a processor in a thread, an append while a handler is
blocked, and two instances racing on the same batch."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable

from esctl_lib import EventStore
from esctl_lib.events import Event
from esctl_lib.processing import ConstantRetry, NoRetry, is_readable, run_processor
from esctl_lib.processing.processor import Processor
from esctl_lib.testing import eventually
from tests.backends import StoreSpec
from tests.processing.handlers_outside_apps import HotAdded, HotNoticed, ThreadGate


def add_hot(store: EventStore, count: int) -> list[Event]:
    stored = []
    for n in range(count):
        stored += store.append([HotAdded(aggregate_id=str(uuid.uuid4()), body={"n": n})])
    eventually(lambda: is_readable(store, stored[-1].id or 0), timeout=30,
               what="the events to be readable")
    return stored


def rows(store: EventStore, table: str) -> list[int]:
    with store.read_transaction() as tx:
        return sorted(int(r[0]) for r in tx.fetchall(f"SELECT n FROM {table}"))


def noticed(store: EventStore) -> Counter[str]:
    """How often each triggering event's HotNoticed is stored (by causation id)."""
    return Counter(e.causation_id for e in store.iter_range(0)
                   if isinstance(e, HotNoticed) and e.causation_id)


def run_in_thread(processor: Processor, store: EventStore) -> tuple[threading.Thread,
                                                                     list[BaseException]]:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run_processor(processor, store, stop=threading.Event(), once=True, retry=NoRetry())
        except BaseException as e:  # pragma: no cover - reported by the test
            errors.append(e)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, errors


def append_while_blocked(spec: StoreSpec, gate: ThreadGate) -> None:
    """An application append from another connection and thread completes, and becomes
    readable, while the handler is still blocked on ``gate``."""
    other = spec.open()
    done = threading.Event()
    appended: list[Event] = []

    def append() -> None:
        appended.extend(other.append([HotNoticed(aggregate_id=str(uuid.uuid4()))]))
        done.set()

    threading.Thread(target=append, daemon=True).start()
    assert done.wait(20), "the append waited for the blocked handler"
    assert not gate.release.is_set()
    reader = spec.opened[0]  # the processor's handle: not the appender's own view
    eventually(lambda: is_readable(reader, appended[0].id or 0), timeout=20,
               what="the application's event to be readable while the handler blocks")
    assert not gate.release.is_set()


def race_two_instances(make: Callable[[], Processor], first: EventStore,
                       second: EventStore) -> list[BaseException]:
    """Run two instances of a processor, one on each store handle, at once (each with
    ``once=True``) and return what they raised. The processor's tables are set up first:
    two setups at once may race on PostgreSQL."""
    errors: list[BaseException] = []

    def instance(store: EventStore) -> None:
        try:
            run_processor(make(), store, stop=threading.Event(), once=True,
                          retry=ConstantRetry(interval=0.0, sleep=lambda s: None))
        except BaseException as e:  # pragma: no cover - reported by the test
            errors.append(e)

    make().setup(first)
    threads = [threading.Thread(target=instance, args=(s,), daemon=True)
               for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive()
    return errors
