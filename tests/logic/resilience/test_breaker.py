"""The circuit breaker's state machine, on a clock the test moves."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.logic.resilience.breaker import Circuit, CircuitBreaker
from gateway.logic.resilience.guard import GuardedModel
from gateway.spec import CircuitSpec


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(**kw: float) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker(CircuitSpec.model_validate({"failures": 3, "open_s": 2.0, **kw}), clock), clock


def test_opens_after_consecutive_failures_and_refuses_at_once() -> None:
    b, _ = breaker()
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state == Circuit.CLOSED
    b.success()  # a success resets the run
    for _ in range(3):
        b.failure()
    assert b.state == Circuit.OPEN and b.opened == 1
    assert not b.allow()


def test_half_open_lets_one_probe_through_and_its_result_decides() -> None:
    b, clock = breaker()
    for _ in range(3):
        b.failure()
    clock.now += 2.0
    assert b.allow()  # the probe
    assert b.state == Circuit.HALF_OPEN and not b.allow()  # only one at a time
    b.failure()
    assert b.state == Circuit.OPEN and b.opened == 2 and not b.allow()
    clock.now += 2.0
    assert b.allow()
    b.success()
    assert b.state == Circuit.CLOSED and b.allow() and b.allow()


def test_error_rate_over_the_window() -> None:
    b, _ = breaker(failures=100, error_rate=0.5, min_calls=10, window_s=10.0)
    for i in range(9):
        (b.success if i % 2 else b.failure)()
    assert b.state == Circuit.CLOSED  # fewer than min_calls
    b.failure()
    assert b.state == Circuit.OPEN  # 6 of 10 failed
    b2, clock2 = breaker(failures=100, error_rate=0.5, min_calls=4, window_s=1.0)
    for _ in range(3):
        b2.failure()
    clock2.now += 5  # old failures leave the window
    for _ in range(4):
        b2.success()
    b2.failure()
    assert b2.state == Circuit.CLOSED


def test_with_a_health_check_no_request_probes_a_graph_that_does_not_answer() -> None:
    b, clock = breaker()
    b.health(True)
    for _ in range(3):
        b.failure()
    clock.now += 5.0
    b.health(False)  # the background check still fails: requests keep going to the fallback
    assert not b.allow() and b.state == Circuit.OPEN
    clock.now += 1.0
    b.health(True)  # it answers again: one request may probe
    assert b.allow() and b.state == Circuit.HALF_OPEN


class Broken:
    """A predictor with a bug: it raises what no graph failure looks like."""

    def predict(self, inputs: dict[str, Any], mv: Any) -> Any:
        raise KeyError("inputs")

    def served(self) -> None:
        return None


def test_a_probe_that_raises_unexpectedly_reopens_instead_of_staying_taken() -> None:
    b, clock = breaker()
    for _ in range(3):
        b.failure()
    clock.now += 2.0
    guarded = GuardedModel(Broken(), b)
    with pytest.raises(KeyError):
        guarded.predict({}, None)  # the probe
    assert b.state == Circuit.OPEN and b.opened == 2
    clock.now += 2.0
    assert b.allow()  # a later probe may go: the circuit is not stuck half-open
