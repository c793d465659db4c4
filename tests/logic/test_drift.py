"""Drift bins and PSI: what the service counts and what the report and the gauge compute."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gateway.logic.drift import SCORE, DriftCounter, band, psi, version_bins
from gateway.saver.stats import drift_bins


def _manifest(frame: pd.DataFrame, scores: np.ndarray) -> dict[str, object]:
    return {"baseline": {"bins": drift_bins(frame, scores)}}


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift() -> None:
    base = [100, 200, 300, 400]
    assert psi([10, 20, 30, 40], base) == 0.0
    small, large = psi([110, 190, 300, 400], base), psi([400, 300, 200, 100], base)
    assert 0 < small < 0.1 and large > 0.25
    assert band(small) == "stable" and band(0.2) == "moderate" and band(large) == "significant"
    assert math.isnan(psi([0, 0, 0, 0], base)) and band(math.nan) == "no data"
    assert math.isfinite(psi([0, 0, 0, 10], base))  # an empty bin is rare, not impossible


def test_bins_from_held_out_rows_count_live_values_the_same_way() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "amount": rng.lognormal(8, 1, 5000),
            "late": rng.choice([0.0, 0.0, 0.0, 1.0, 2.0], 5000),  # mostly one value: fewer, wider bins
            "purpose": rng.choice(["car", "home", "other_thing"], 5000, p=[0.5, 0.3, 0.2]),
        }
    )
    scores = rng.uniform(0, 1, 5000)
    bins = version_bins(_manifest(frame, scores))
    assert set(bins) == {"amount", "late", "purpose", SCORE}
    assert bins["amount"].size == 11 and sum(bins["amount"].baseline) == 5000  # 10 deciles + missing
    assert bins["late"].size < 11
    # The held-out rows themselves fall into the bins exactly as recorded.
    for name in ("amount", "late"):
        counted = np.bincount(bins[name].index(frame[name].to_numpy()), minlength=bins[name].size)
        assert counted.tolist() == list(bins[name].baseline)
    assert bins["purpose"].index(["car", "bike", None]).tolist() == [
        bins["purpose"].categories["car"],  # type: ignore[index]
        bins["purpose"].size - 1,
        bins["purpose"].size - 1,
    ]
    assert bins["amount"].index([float("nan"), None]).tolist() == [10, 10]  # missing: the last bin


def test_the_counter_takes_stored_features_request_fields_and_scores() -> None:
    frame = pd.DataFrame({"amount": np.arange(100.0), "purpose": ["car", "home"] * 50})
    counter = DriftCounter(version_bins(_manifest(frame, np.linspace(0, 1, 100))))
    columns = {"amount": np.array([5.0, 95.0, 96.0])}  # read from the store
    rows = [{"purpose": "car"}, {"purpose": "car"}, {"purpose": "boat"}]  # from the request
    got = sorted(counter.counts(columns, rows, [0.5, 0.5, 0.99]))
    amount = [(f, i, n) for f, i, n in got if f == "amount"]
    assert sum(n for *_, n in amount) == 3 and len(amount) == 2  # 95 and 96 share the top decile
    assert ("purpose", 2, 1) in got and sum(n for f, _, n in got if f == "purpose") == 3
    assert sum(n for f, _, n in got if f == SCORE) == 3


def test_one_value_lands_in_the_bin_the_vector_path_gives() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=1000).round(1), "c": rng.choice(list("abcde"), 1000)})
    bins = version_bins(_manifest(frame, rng.uniform(0, 1, 1000)))
    probes = [*rng.normal(size=200).round(1), *bins["x"].edges.tolist(), float("nan"), None, "bad"]  # type: ignore[union-attr]
    for v in probes:
        assert bins["x"].index_one(v) == bins["x"].index([v])[0], v
    for c in ["a", "e", "z", None, 3]:
        assert bins["c"].index_one(c) == bins["c"].index([c])[0], c
