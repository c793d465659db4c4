"""Compiled estimators answer like the fitted scikit-learn estimators they were compiled from.

Each supported family is fitted on random data (classification with two and three classes,
regression), compiled, written to its file and read back, then compared with
``predict_proba`` / ``decision_function`` / ``predict`` on fresh rows, including values
outside the training range and, for trees, missing values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import ElasticNet, LinearRegression, LogisticRegression, Ridge
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from gateway.estimator.compiler import NotCompilable, compile_estimator
from gateway.estimator.program import CompiledEstimator

F = 6
CLASSIFIERS = [
    lambda: LogisticRegression(max_iter=500),
    lambda: DecisionTreeClassifier(max_depth=6, random_state=0),
    lambda: RandomForestClassifier(n_estimators=15, max_depth=5, random_state=0),
    lambda: ExtraTreesClassifier(n_estimators=10, random_state=0),
    lambda: GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0),
]
REGRESSORS = [
    LinearRegression,
    lambda: Ridge(alpha=0.5),
    lambda: ElasticNet(alpha=0.01),
    lambda: DecisionTreeRegressor(max_depth=7, random_state=0),
    lambda: RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0),
    lambda: ExtraTreesRegressor(n_estimators=8, random_state=0),
    lambda: GradientBoostingRegressor(n_estimators=25, random_state=0),
    lambda: GradientBoostingRegressor(n_estimators=10, init="zero", random_state=0),
]


def _data(seed: int, classes: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, F)).round(2)  # ties: thresholds between repeated values
    signal = x @ rng.normal(size=F) + 0.3 * rng.normal(size=400)
    if classes is None:
        y = signal
    else:
        y = np.digitize(signal, np.quantile(signal, np.linspace(0, 1, classes + 1)[1:-1])).astype(float)
    probe = np.vstack([rng.normal(size=(200, F)) * 2, x[:50]])  # beyond the training range, and on it
    return x, y, probe


def _roundtrip(est: Any, tmp: Path) -> CompiledEstimator:
    path = tmp / "estimator.compiled.npz"
    compile_estimator(est, F).save(path)
    return CompiledEstimator.load(path)


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("make", CLASSIFIERS)
def test_classifiers_match(make: Any, classes: int, tmp_path: Path) -> None:
    x, y, probe = _data(classes, classes)
    est = make().fit(x, y)
    compiled = _roundtrip(est, tmp_path)
    np.testing.assert_allclose(compiled.predict_proba(probe), est.predict_proba(probe), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(compiled.predict(probe), est.predict(probe))
    if hasattr(est, "decision_function"):
        np.testing.assert_allclose(
            compiled.decision_function(probe), est.decision_function(probe), rtol=0, atol=1e-10
        )


def test_liblinear_logistic_regression_matches(tmp_path: Path) -> None:
    x, y, probe = _data(5, 2)
    est = LogisticRegression(solver="liblinear").fit(x, y)
    compiled = _roundtrip(est, tmp_path)
    np.testing.assert_allclose(compiled.predict_proba(probe), est.predict_proba(probe), rtol=0, atol=1e-12)


@pytest.mark.parametrize("make", REGRESSORS)
def test_regressors_match(make: Any, tmp_path: Path) -> None:
    x, y, probe = _data(7, None)
    est = make().fit(x, y)
    compiled = _roundtrip(est, tmp_path)
    np.testing.assert_allclose(compiled.predict(probe), est.predict(probe), rtol=0, atol=1e-10)


def test_trees_send_missing_values_where_scikit_learn_does(tmp_path: Path) -> None:
    x, y, probe = _data(3, 2)
    x[::7, 2] = np.nan  # fitted with missing values: each split learnt where they go
    probe[::3, 2] = np.nan
    probe[::5, 4] = np.nan  # never missing in training
    for est in (
        DecisionTreeClassifier(random_state=0).fit(x, y),
        RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y),
    ):
        compiled = _roundtrip(est, tmp_path)
        np.testing.assert_allclose(compiled.predict_proba(probe), est.predict_proba(probe), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    depth=st.integers(1, 8),
    trees=st.integers(1, 12),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
)
def test_forests_match_on_random_fits(seed: int, depth: int, trees: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(150, F)) * scale
    y = (x[:, 0] + rng.normal(size=150) * scale > 0).astype(int)
    if len(set(y)) < 2:
        y[0] = 1 - y[0]
    est = RandomForestClassifier(n_estimators=trees, max_depth=depth, random_state=seed).fit(x, y)
    compiled = compile_estimator(est, F)
    probe = rng.normal(size=(100, F)) * scale
    np.testing.assert_allclose(compiled.predict_proba(probe), est.predict_proba(probe), atol=1e-12)


def test_what_it_does_not_know_is_refused_with_the_reason() -> None:
    x, y, _ = _data(1, 2)
    with pytest.raises(NotCompilable, match="HistGradientBoostingClassifier is not one of"):
        compile_estimator(HistGradientBoostingClassifier(max_iter=5).fit(x, y), F)
    labels = np.where(y > 0, "yes", "no")
    with pytest.raises(NotCompilable, match=r"classes .* are not numbers"):
        compile_estimator(LogisticRegression().fit(x, labels), F)
    with pytest.raises(NotCompilable, match="init=LogisticRegression"):
        compile_estimator(GradientBoostingClassifier(n_estimators=3, init=LogisticRegression()).fit(x, y), F)
    with pytest.raises(NotCompilable, match="fitted on 6 features, not 5"):
        compile_estimator(LogisticRegression().fit(x, y), 5)


def test_wrong_width_and_missing_methods_are_errors(tmp_path: Path) -> None:
    x, y, _ = _data(2, None)
    compiled = _roundtrip(Ridge().fit(x, y), tmp_path)
    with pytest.raises(ValueError, match="expected 6 features"):
        compiled.predict(x[:, :3])
    with pytest.raises(AttributeError, match="no predict_proba"):
        compiled.predict_proba(x)
    assert compiled.has("predict") and not compiled.has("predict_proba")
