"""Event stream processors: projectors, reactors, retry policies, parking, the worker loop.

The runner that supervises processors in their own OS processes lives in
:mod:`esctl_lib.runner`; this package's names are the in-process building blocks.
"""

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
