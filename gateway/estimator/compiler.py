"""Fitted scikit-learn estimators into :class:`~gateway.estimator.program.CompiledEstimator`.

Read only from public fitted attributes (``coef_``, ``intercept_``, ``classes_``, ``tree_``,
``estimators_``, ``learning_rate``, ``init_``), except the initial raw score of gradient
boosting, which is taken from the estimator itself on one row (it is a constant for the
initial estimates this compiler accepts). An estimator it does not know, or one fitted in a
way it does not reproduce (several outputs, classes that are not numbers when ``predict`` is
asked for, a custom boosting ``init``), raises :class:`NotCompilable` with the reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gateway.estimator.program import FORMAT, CompiledEstimator

Array = np.ndarray[Any, Any]


class NotCompilable(Exception):
    """The estimator is served from its pickle; the message says why."""


def compile_estimator(est: Any, n_features: int) -> CompiledEstimator:
    from sklearn.base import is_classifier
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.linear_model._base import LinearModel
    from sklearn.tree import BaseDecisionTree

    name = type(est).__name__
    header: dict[str, Any] = {"format": FORMAT, "estimator": name, "n_features": n_features}
    arrays: dict[str, Array] = {}
    classifier = is_classifier(est)
    if classifier:
        arrays["classes"] = _numeric_classes(est)
    if isinstance(est, LogisticRegression):
        coef, intercept = np.asarray(est.coef_, np.float64), np.asarray(est.intercept_, np.float64)
        binary = coef.shape[0] == 1
        ovr = getattr(est, "solver", "") == "liblinear" or getattr(est, "multi_class", "auto") == "ovr"
        header.update(kind="linear", link="logistic" if binary else "ovr" if ovr else "softmax")
        arrays.update(coef=coef, intercept=intercept)
    elif isinstance(est, LinearModel) and not classifier:
        coef = np.atleast_2d(np.asarray(est.coef_, np.float64))
        intercept = np.atleast_1d(np.asarray(est.intercept_, np.float64)) * np.ones(coef.shape[0])
        header.update(kind="linear", link="none")
        arrays.update(coef=coef, intercept=intercept)
    elif isinstance(est, BaseDecisionTree):
        header.update(kind="trees", combine="mean", link="shares" if classifier else "none")
        arrays.update(_stack([est], classifier))
    elif isinstance(
        est, (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor)
    ):
        header.update(kind="trees", combine="mean", link="shares" if classifier else "none")
        arrays.update(_stack(list(est.estimators_), classifier))
    elif isinstance(est, (GradientBoostingClassifier, GradientBoostingRegressor)):
        stages = np.asarray(est.estimators_, dtype=object)  # (n_stages, K)
        k = stages.shape[1]
        trees = [stages[i, c] for i in range(stages.shape[0]) for c in range(k)]
        arrays.update(_stack(trees, classifier=False))
        arrays["tree_class"] = np.tile(np.arange(k), stages.shape[0]).astype(np.int64)
        arrays["init"] = _boosting_init(est, n_features, k)
        link = "none" if not classifier else "logistic" if k == 1 else "softmax"
        header.update(kind="trees", combine="boost", rate=float(est.learning_rate), link=link)
    else:
        raise NotCompilable(f"{name} is not one of the estimators the compiler knows")
    header.setdefault("depth", int(arrays.pop("depth", np.array(0))))
    if "coef" in arrays and arrays["coef"].shape[1] != n_features:
        raise NotCompilable(f"{name} was fitted on {arrays['coef'].shape[1]} features, not {n_features}")
    return CompiledEstimator(header, arrays)


def _numeric_classes(est: Any) -> Array:
    classes = np.asarray(est.classes_)
    if classes.ndim != 1:
        raise NotCompilable("several outputs")
    if classes.dtype.kind not in "iufb":
        raise NotCompilable(f"its classes {classes.tolist()[:5]} are not numbers")
    return classes.astype(np.float64)


def _stack(trees: list[Any], classifier: bool) -> dict[str, Array]:
    """Every tree's nodes in one set of arrays; children and roots as indices into them."""
    parts: dict[str, list[Array]] = {
        k: [] for k in ("feature", "threshold", "left", "right", "missing_left", "value")
    }
    roots, offset, depth = [], 0, 0
    for t in trees:
        tree = t.tree_
        if tree.n_outputs != 1:
            raise NotCompilable("several outputs")
        n = tree.node_count
        leaf = tree.children_left < 0
        parts["feature"].append(np.where(leaf, -1, tree.feature).astype(np.int64))
        parts["threshold"].append(np.asarray(tree.threshold, np.float64))
        parts["left"].append(np.where(leaf, 0, tree.children_left + offset).astype(np.int64))
        parts["right"].append(np.where(leaf, 0, tree.children_right + offset).astype(np.int64))
        missing = getattr(tree, "missing_go_to_left", None)
        parts["missing_left"].append(np.asarray(missing, bool) if missing is not None else np.zeros(n, bool))
        value = np.asarray(tree.value[:, 0, :], np.float64)
        if classifier:
            total = value.sum(axis=1, keepdims=True)
            value = value / np.where(total == 0, 1.0, total)
        parts["value"].append(value)
        roots.append(offset)
        offset += n
        depth = max(depth, int(tree.max_depth))
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["roots"] = np.asarray(roots, np.int64)
    out["depth"] = np.array(depth)
    return out


def _boosting_init(est: Any, n_features: int, k: int) -> Array:
    init = getattr(est, "init_", None)
    if init != "zero" and type(init).__name__ not in ("DummyClassifier", "DummyRegressor"):
        raise NotCompilable(f"gradient boosting with init={type(init).__name__} (only the default or 'zero')")
    if init == "zero":
        return np.zeros(k)
    return np.asarray(est._raw_predict_init(np.zeros((1, n_features), np.float32)), np.float64).reshape(k)
