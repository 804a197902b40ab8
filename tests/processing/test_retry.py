"""Retry policies: EventSourcery's exact sleep sequences, with the sleep injected."""

from __future__ import annotations

import threading

import pytest

from esctl_lib import ConfigError, ProcessingError
from esctl_lib.processing import (
    ConstantRetry,
    ExponentialRetry,
    NoRetry,
    Processor,
    RetryPolicy,
    retry_policy,
    retry_policy_for,
)


def failure(event_uuid: str) -> ProcessingError:
    return ProcessingError("boom", processor="p", event_id=1, event_type="t",
                           event_uuid=event_uuid)


def sleeps(policy: RetryPolicy, errors: list[BaseException]) -> list[float]:
    slept: list[float] = []
    policy._sleep = slept.append
    for error in errors:
        delay = policy.next_delay(error)
        assert delay is not None
        policy.pause(delay, threading.Event())
    return slept


def test_the_same_event_failing_ten_times_backs_off_to_a_64_second_cap() -> None:
    assert sleeps(ExponentialRetry(), [failure("a")] * 10) == [
        1, 2, 4, 8, 16, 32, 64, 64, 64, 64,
    ]


def test_the_same_event_failing_three_times_sleeps_one_two_four() -> None:
    assert sleeps(ExponentialRetry(), [failure("a")] * 3) == [1, 2, 4]


def test_a_different_event_starts_again_at_one_second() -> None:
    errors = [failure("a")] * 3 + [failure("b")] * 2
    assert sleeps(ExponentialRetry(), errors) == [1, 2, 4, 1, 2]


def test_errors_that_are_not_processing_errors_always_sleep_one_second() -> None:
    assert sleeps(ExponentialRetry(), [RuntimeError("x")] * 3) == [1, 1, 1]


def test_constant_retry_always_sleeps_one_second() -> None:
    assert sleeps(ConstantRetry(), [failure("a")] * 3) == [1, 1, 1]


def test_no_retry_gives_up_at_once() -> None:
    assert NoRetry().next_delay(failure("a")) is None


@pytest.mark.parametrize(
    ("name", "cls"),
    [("none", NoRetry), ("constant", ConstantRetry), ("exponential", ExponentialRetry)],
)
def test_a_policy_is_chosen_by_name(name: str, cls: type[RetryPolicy]) -> None:
    assert type(retry_policy(name)) is cls


def test_an_unknown_policy_name_is_a_config_error_listing_the_choices() -> None:
    with pytest.raises(ConfigError, match="use one of none, constant, exponential"):
        retry_policy("sometimes")


def test_max_attempts_below_one_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="max_attempts"):
        retry_policy("constant", max_attempts=0)


def test_a_processor_overrides_the_configured_policy_and_attempts() -> None:
    class Picky(Processor):
        retry = "exponential"
        max_attempts = 3

    policy = retry_policy_for(Picky(), default="constant")
    assert (type(policy), policy.max_attempts) == (ExponentialRetry, 3)


def test_a_processor_without_overrides_gets_the_configured_policy() -> None:
    class Plain(Processor):
        pass

    assert type(retry_policy_for(Plain(), default="none")) is NoRetry


def test_the_pause_wakes_up_when_stop_is_set() -> None:
    stop = threading.Event()
    pausing = threading.Thread(target=ConstantRetry().pause, args=(3600, stop))
    pausing.start()
    stop.set()
    pausing.join(timeout=10)
    assert not pausing.is_alive()
