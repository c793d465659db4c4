"""Batched histogram updates give exactly what one observe() per value gives."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Histogram

from gateway.logic.web.metric_buffer import PendingMetrics
from gateway.logic.web.metrics import SCORE_BUCKETS


def _hist() -> tuple[CollectorRegistry, Histogram]:
    reg = CollectorRegistry()
    return reg, Histogram("s", "scores", ["m"], buckets=SCORE_BUCKETS, registry=reg)


def test_batched_updates_equal_observe_one_by_one() -> None:
    rng = np.random.default_rng(0)
    values = [*rng.random(500).tolist(), 0.0, 0.05, 0.1, 1.0, 1.5, -0.2]  # edges, above, below
    reg_a, a = _hist()
    reg_b, b = _hist()
    for v in values:
        a.labels("x").observe(v)
    pending = PendingMetrics(flush_ms=600_000)
    pending.observe(b.labels("x"), values)
    pending.flush()

    def samples(reg: CollectorRegistry) -> dict[tuple[str, str], float]:
        return {
            (smp.name, smp.labels.get("le", "")): smp.value
            for fam in reg.collect()
            for smp in fam.samples
            if not smp.name.endswith("_created")
        }

    got, want = samples(reg_b), samples(reg_a)
    assert got.keys() == want.keys()
    for key, value in want.items():
        if key[0] == "s_sum":  # summed in another order: equal up to rounding
            assert abs(got[key] - value) < 1e-9
        else:
            assert got[key] == value, key


def test_pending_updates_reach_the_values_only_when_flushed_and_add_up_exactly() -> None:
    from prometheus_client import Counter

    from gateway.logic.web.metric_buffer import PendingMetrics

    reg_a, a = _hist()
    reg_b, b = _hist()
    ca = Counter("c", "count", ["m"], registry=reg_a)
    cb = Counter("c", "count", ["m"], registry=reg_b)
    pending = PendingMetrics(flush_ms=60_000)  # no timed flush during the test
    values = [0.01, 0.5, float("nan"), 2.0, 0.05, *np.random.default_rng(1).random(40).tolist()]
    for chunk in (values[:3], values[3:10], values[10:]):
        for v in chunk:
            a.labels("x").observe(v)
        pending.observe(b.labels("x"), chunk)
        ca.labels("x").inc(2)
        pending.inc(cb.labels("x"), 2)
    assert reg_b.get_sample_value("c_total", {"m": "x"}) == 0.0
    assert reg_b.get_sample_value("s_count", {"m": "x"}) == 0.0
    pending.flush()
    assert reg_b.get_sample_value("c_total", {"m": "x"}) == reg_a.get_sample_value("c_total", {"m": "x"}) == 6
    for le in [*(str(x) for x in SCORE_BUCKETS), "+Inf"]:
        labels = {"m": "x", "le": le}
        assert reg_b.get_sample_value("s_bucket", labels) == reg_a.get_sample_value("s_bucket", labels), le
    assert np.isnan(reg_b.get_sample_value("s_sum", {"m": "x"}))  # NaN adds to the sum, in no bucket


def test_unbuffered_pending_applies_at_once() -> None:
    from gateway.logic.web.metric_buffer import PendingMetrics

    reg, h = _hist()
    PendingMetrics(flush_ms=0).observe(h.labels("x"), [0.3, 0.7])
    assert reg.get_sample_value("s_count", {"m": "x"}) == 2


def test_a_tally_reaches_its_counters_when_flushed_and_adds_up_like_one_by_one() -> None:
    from prometheus_client import Counter

    from gateway.logic.web.metric_buffer import Tally

    reg = CollectorRegistry()
    c = Counter("d", "drift bins", ["bin"], registry=reg)
    made: list[int] = []

    def child(i: int) -> Counter:
        made.append(i)
        return c.labels(str(i))

    def value(i: int) -> float | None:
        return reg.get_sample_value("d_total", {"bin": str(i)})

    tally = Tally(5, child)
    pending = PendingMetrics(flush_ms=60_000)  # no timed flush during the test
    pending.tally(tally, np.array([1, 0, 2, 0, 0]))
    pending.tally(tally, np.array([3, 0, 0, 0, 1]))
    assert value(0) is None  # nothing applied yet
    pending.flush()
    assert [value(i) for i in range(5)] == [4, None, 2, None, 1]
    pending.flush()  # nothing pending: nothing added twice
    pending.tally(tally, np.array([1, 0, 0, 0, 0]))
    pending.flush()
    assert value(0) == 5 and sorted(made) == [0, 2, 4]  # one child per position, made once
    PendingMetrics(flush_ms=0).tally(tally, np.array([0, 7, 0, 0, 0]))  # unbuffered: at once
    assert value(1) == 7
