"""eventually polls a condition until a deadline: it returns the value or fails saying what."""

from __future__ import annotations

import pytest

from esctl_lib.testing import eventually


class FakeClock:
    """A clock that only moves when something sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_it_returns_the_first_truthy_value() -> None:
    values = iter([0, [], [1, 2]])
    clock = FakeClock()
    assert eventually(lambda: next(values), timeout=5, clock=clock, sleep=clock.sleep) == [1, 2]
    assert len(clock.sleeps) == 2


def test_it_returns_at_once_without_sleeping_when_already_true() -> None:
    clock = FakeClock()
    assert eventually(lambda: "ready", clock=clock, sleep=clock.sleep) == "ready"
    assert clock.sleeps == []


def test_it_fails_after_the_deadline_saying_what_it_waited_for() -> None:
    clock = FakeClock()
    with pytest.raises(AssertionError, match=r"waited 2 s for the tracker to reach 5; "
                                             r"the last check returned \[\]"):
        eventually(lambda: [], timeout=2, what="the tracker to reach 5",
                   clock=clock, sleep=clock.sleep)


def test_it_never_sleeps_past_the_deadline() -> None:
    clock = FakeClock()
    with pytest.raises(AssertionError):
        eventually(lambda: False, timeout=1, clock=clock, sleep=clock.sleep)
    assert clock.now == pytest.approx(1.0)
    assert max(clock.sleeps) <= 0.1


def test_an_error_in_the_condition_propagates_at_once() -> None:
    def broken() -> bool:
        raise KeyError("nope")

    with pytest.raises(KeyError):
        eventually(broken, timeout=5)
