"""Event stream processors: projectors, reactors, retry policies, parking, the worker loop.

The runner that supervises processors in their own OS processes lives in
:mod:`esctl_lib.runner`; this package's names are the in-process building blocks.

The names are imported on first use (PEP 562 ``__getattr__``, as in :mod:`esctl_lib`): a
module of this package that only reads (``processing.state``, the rebuild records) loads
without the worker, batching and parking code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from esctl_lib._lazy import lazy_exports

if TYPE_CHECKING:
    from esctl_lib.processing.batching import BatchTransaction
    from esctl_lib.processing.parking import (
        ParkedEvent,
        ParkedRetry,
        list_parked,
        process_parked,
        retry_parked,
    )
    from esctl_lib.processing.processor import Processor, handles_all
    from esctl_lib.processing.projector import Projector
    from esctl_lib.processing.reactor import Reactor, emitted_uuid
    from esctl_lib.processing.retry import (
        RETRY_POLICIES,
        ConstantRetry,
        ExponentialRetry,
        NoRetry,
        RetryPolicy,
        retry_policy,
        retry_policy_for,
    )
    from esctl_lib.processing.tables import Tables, open_tables
    from esctl_lib.processing.waiting import has_reached, is_readable, wait_for
    from esctl_lib.processing.worker import process_available, replay, run_processor

__all__ = [
    "RETRY_POLICIES",
    "BatchTransaction",
    "ConstantRetry",
    "ExponentialRetry",
    "NoRetry",
    "ParkedEvent",
    "ParkedRetry",
    "Processor",
    "Projector",
    "Reactor",
    "RetryPolicy",
    "Tables",
    "emitted_uuid",
    "handles_all",
    "has_reached",
    "is_readable",
    "list_parked",
    "open_tables",
    "process_available",
    "process_parked",
    "replay",
    "retry_parked",
    "retry_policy",
    "retry_policy_for",
    "run_processor",
    "wait_for",
]

_LAZY: dict[str, str] = {
    "BatchTransaction": "esctl_lib.processing.batching",
    "ConstantRetry": "esctl_lib.processing.retry",
    "ExponentialRetry": "esctl_lib.processing.retry",
    "NoRetry": "esctl_lib.processing.retry",
    "ParkedEvent": "esctl_lib.processing.parking",
    "ParkedRetry": "esctl_lib.processing.parking",
    "Processor": "esctl_lib.processing.processor",
    "Projector": "esctl_lib.processing.projector",
    "RETRY_POLICIES": "esctl_lib.processing.retry",
    "Reactor": "esctl_lib.processing.reactor",
    "RetryPolicy": "esctl_lib.processing.retry",
    "Tables": "esctl_lib.processing.tables",
    "emitted_uuid": "esctl_lib.processing.reactor",
    "handles_all": "esctl_lib.processing.processor",
    "has_reached": "esctl_lib.processing.waiting",
    "is_readable": "esctl_lib.processing.waiting",
    "list_parked": "esctl_lib.processing.parking",
    "open_tables": "esctl_lib.processing.tables",
    "process_available": "esctl_lib.processing.worker",
    "process_parked": "esctl_lib.processing.parking",
    "replay": "esctl_lib.processing.worker",
    "retry_parked": "esctl_lib.processing.parking",
    "retry_policy": "esctl_lib.processing.retry",
    "retry_policy_for": "esctl_lib.processing.retry",
    "run_processor": "esctl_lib.processing.worker",
    "wait_for": "esctl_lib.processing.waiting",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
