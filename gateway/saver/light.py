"""The light model a version ships for its fallback: a linear model over the transformed features.

Fitted at packaging to reproduce the version's own model on the held-out rows (a
distillation: the target is the model's raw output, so the fallback agrees with the
answers it stands in for, as far as a linear model can), and stored as data,
``light_model.json``: coefficients, intercept and link, never a pickle. A worker runs it
with numpy (``gateway.logic.resilience.light``).

The link follows the model's raw output: probabilities (every value in (0, 1)) are
fitted on the logit scale and returned through a sigmoid; anything else is fitted as it
is. A model with several outputs per row (softmax classes) gets no light model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gateway.saver import stats

FILE = "light_model.json"
FORMAT = "gateway.light-model"
FORMAT_VERSION = 1
RIDGE = 1e-3  # keeps one-hot columns that never vary in the sample from blowing up
EPS = 1e-6

Array = np.ndarray[Any, Any]


def fit(x: Array, raw: Array) -> dict[str, Any]:
    """Coefficients reproducing ``raw`` (one value per row of ``x``) as closely as a linear model can."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(raw, dtype=np.float64).reshape(-1)
    link = "logistic" if np.all((y > 0) & (y < 1)) else "identity"
    target = np.log(np.clip(y, EPS, 1 - EPS) / (1 - np.clip(y, EPS, 1 - EPS))) if link == "logistic" else y
    design = np.hstack([x, np.ones((len(x), 1))])
    gram = design.T @ design + RIDGE * np.eye(design.shape[1])
    w = np.linalg.solve(gram, design.T @ target)
    return {"link": link, "coef": w[:-1].tolist(), "intercept": float(w[-1])}


def predict(model: dict[str, Any], x: Array) -> Array:
    z = np.asarray(x, dtype=np.float64) @ np.asarray(model["coef"]) + float(model["intercept"])
    return np.asarray(1.0 / (1.0 + np.exp(-z))) if model["link"] == "logistic" else z


def write(staging: Path, x: Array, raw: Array, labels: Array | None) -> dict[str, Any]:
    """Fit, check and write ``light_model.json``; the manifest's record of it (or why there is none)."""
    raw = np.asarray(raw)
    if raw.ndim == 2 and raw.shape[1] > 1:
        return {"file": None, "why": "the model gives several outputs per row; a light model gives one"}
    model = fit(x, raw)
    got = predict(model, x)
    quality: dict[str, Any] = {
        "rows": len(got),
        "target": "the version's model outputs on the held-out rows",
        "mean_abs_diff": float(np.mean(np.abs(got - raw.reshape(-1)))),
        "max_abs_diff": float(np.max(np.abs(got - raw.reshape(-1)))),
    }
    if labels is not None and model["link"] == "logistic":
        quality["metrics"] = stats.classification_metrics(labels, got)
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "input": "transformed",
        **model,
        "fit": quality,
    }
    (staging / FILE).write_text(json.dumps(body, indent=1) + "\n")
    return {"file": FILE, "link": model["link"], "fit": quality}
