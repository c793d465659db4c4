"""Bulk histogram updates give exactly what one observe() per value gives."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Histogram

from gateway.logic.telemetry import SCORE_BUCKETS, observe_many


def _hist() -> tuple[CollectorRegistry, Histogram]:
    reg = CollectorRegistry()
    return reg, Histogram("s", "scores", ["m"], buckets=SCORE_BUCKETS, registry=reg)


def test_observe_many_equals_observe_one_by_one() -> None:
    rng = np.random.default_rng(0)
    values = [*rng.random(500).tolist(), 0.0, 0.05, 0.1, 1.0, 1.5, -0.2]  # edges, above, below
    reg_a, a = _hist()
    reg_b, b = _hist()
    for v in values:
        a.labels("x").observe(v)
    observe_many(b.labels("x"), values)

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
