"""Merging a worker's concurrent Predicts: who waits, what is merged, who gets which rows.

The unit tests drive :class:`Coalescer` with a call that doubles its input and can be held
open, so the queue forms deterministically; the last test runs it against the real
graph-server and compares every answer with an unmerged call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gateway import errors
from gateway.logic.coalesce import Coalescer

Array = np.ndarray[Any, Any]


class HeldCall:
    """Doubles its input; the first call blocks until released. Records every call."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.calls: list[tuple[int, int, float]] = []  # version, rows, seconds left
        self.fail: Exception | None = None

    def __call__(self, inputs: Mapping[str, Array], version: int, left: float) -> Array:
        first = not self.calls
        self.calls.append((version, len(inputs["x"]), left))
        if first:
            self.entered.set()
            self.release.wait(5)
        if self.fail is not None:
            raise self.fail
        return inputs["x"] * 2


def _x(value: float, rows: int = 1) -> dict[str, Array]:
    return {"x": np.full((rows, 3), value, dtype=np.float32)}


def _queue_behind_a_held_call(co: Coalescer, call: HeldCall, jobs: list[tuple[float, int, int]]) -> list[Any]:
    """One call held in flight, then ``jobs`` (value, rows, version) submitted; returns their futures."""
    pool = ThreadPoolExecutor(len(jobs) + 1)
    first = pool.submit(co.predict, _x(-1), 1)
    assert call.entered.wait(5)
    futures = [pool.submit(co.predict, _x(v, r), ver) for v, r, ver in jobs]
    deadline = time.monotonic() + 5
    while len(co._queue) < len(jobs) and time.monotonic() < deadline:
        time.sleep(0.001)
    call.release.set()
    assert first.result(5).tolist() == [[-2, -2, -2]]
    return futures


def test_a_lone_request_is_sent_at_once_with_its_own_rows() -> None:
    call = HeldCall()
    call.release.set()
    co = Coalescer(call, deadline_s=1.0)
    assert co.predict(_x(3, 2), 7).tolist() == [[6, 6, 6], [6, 6, 6]]
    assert call.calls[0][:2] == (7, 2) and 0.9 < call.calls[0][2] <= 1.0
    assert (co.calls, co.requests) == (1, 1) and not co._busy


def test_requests_arriving_during_a_call_go_together_in_the_next_and_get_their_rows() -> None:
    call = HeldCall()
    co = Coalescer(call, deadline_s=2.0)
    jobs = [(float(i), i % 3 + 1, 1) for i in range(6)]
    futures = _queue_behind_a_held_call(co, call, jobs)
    for (value, rows, _), f in zip(jobs, futures, strict=True):
        assert f.result(5).tolist() == [[value * 2] * 3] * rows
    assert [c[:2] for c in call.calls] == [(1, 1), (1, sum(r for _, r, _ in jobs))]
    assert (co.calls, co.requests) == (2, 7) and not co._busy


def test_versions_are_never_mixed_and_a_call_stays_under_max_rows() -> None:
    call = HeldCall()
    co = Coalescer(call, deadline_s=2.0, max_rows=4)
    jobs = [(1.0, 2, 1), (2.0, 1, 2), (3.0, 2, 1), (4.0, 3, 1), (5.0, 1, 2)]
    futures = _queue_behind_a_held_call(co, call, jobs)
    for (value, rows, _), f in zip(jobs, futures, strict=True):
        assert f.result(5).tolist() == [[value * 2] * 3] * rows
    versions = [v for v, _, _ in call.calls[1:]]
    assert sorted(versions) == [1, 1, 2]  # v1: 2+2 rows, then 3; v2: 1+1
    assert all(rows <= 4 for _, rows, _ in call.calls)


@pytest.mark.parametrize(
    "error",
    [
        errors.Unavailable("graph service: connection refused", code="graph_unavailable"),
        # what the orchestrator reloads and retries on: it must arrive with its version
        errors.GraphVersionMissing(1, "graph service: version 1 of risk is not served"),
    ],
    ids=["unavailable", "version-missing"],
)
def test_a_failed_call_is_the_error_of_every_request_in_it(error: errors.GatewayError) -> None:
    call = HeldCall()
    call.fail = error
    co = Coalescer(call, deadline_s=2.0)
    pool = ThreadPoolExecutor(4)
    first = pool.submit(co.predict, _x(1), 1)
    assert call.entered.wait(5)
    rest = [pool.submit(co.predict, _x(2), 1) for _ in range(3)]
    while len(co._queue) < 3:
        time.sleep(0.001)
    call.release.set()
    for f in [first, *rest]:
        with pytest.raises(type(error)) as info:
            f.result(5)
        assert info.value.msg == error.msg and getattr(info.value, "version", 1) == 1
    assert not co._busy


def test_a_request_whose_deadline_passes_in_the_queue_gets_a_deadline_error() -> None:
    call = HeldCall()
    co = Coalescer(call, deadline_s=0.05)
    pool = ThreadPoolExecutor(2)
    first = pool.submit(co.predict, _x(1), 1)
    assert call.entered.wait(5)
    t0 = time.monotonic()
    queued = pool.submit(co.predict, _x(2), 1)
    with pytest.raises(errors.DeadlineExceeded, match="while waiting for the worker's call in flight"):
        queued.result(5)
    assert time.monotonic() - t0 < 0.5
    call.release.set()
    assert first.result(5).tolist() == [[2, 2, 2]]
    assert co.predict(_x(4), 1).tolist() == [[8, 8, 8]]  # nothing left behind


@pytest.mark.integration
def test_merged_calls_on_the_real_graph_answer_like_single_ones(risk_graph: int, built_models: Path) -> None:
    from gateway.logic.graph_client import GraphClient
    from gateway.logic.predictors import GraphPredictor

    client = GraphClient([f"127.0.0.1:{risk_graph}"], "risk", "score", 5.0)
    merged = GraphPredictor(client, "probability", coalesce_max_rows=512)
    rng = np.random.default_rng(0)
    requests = [rng.normal(size=(int(rng.integers(1, 4)), 18)).astype(np.float32) for _ in range(400)]
    expected = [client.predict({"features": x}, "probability", 1) for x in requests]

    class V:
        version = 1

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda x: merged.predict({"features": x}, V()), requests))  # type: ignore[arg-type]
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-6)
    co = merged.coalescer
    assert co is not None and co.requests == len(requests)
    assert co.calls < len(requests)  # eight threads: calls were shared
