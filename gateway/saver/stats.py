"""Training metrics and baseline distributions recorded in a version's manifest."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


def classification_metrics(y: np.ndarray[Any, Any], p: np.ndarray[Any, Any]) -> dict[str, float]:
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return {
        "auc": float(roc_auc_score(y, p)),
        "logloss": float(log_loss(y, p)),
        "accuracy": float(np.mean((p >= 0.5) == (y >= 0.5))),
        "positive_rate": float(np.mean(y)),
        "rows": len(y),
    }


def score_distribution(p: np.ndarray[Any, Any], bins: int = 20) -> dict[str, Any]:
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    counts, edges = np.histogram(p, bins=bins, range=(0.0, 1.0))
    return {
        "mean": float(p.mean()),
        "std": float(p.std()),
        "quantiles": {str(q): float(v) for q, v in zip(QUANTILES, np.quantile(p, QUANTILES), strict=True)},
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }


def feature_distribution(frame: pd.DataFrame, top: int = 20) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_numeric_dtype(s):
            v = s.to_numpy(dtype=np.float64)
            out[col] = {
                "kind": "numeric",
                "mean": float(np.nanmean(v)),
                "std": float(np.nanstd(v)),
                "min": float(np.nanmin(v)),
                "max": float(np.nanmax(v)),
                "missing": int(np.isnan(v).sum()),
                "quantiles": {
                    str(q): float(x) for q, x in zip(QUANTILES, np.nanquantile(v, QUANTILES), strict=True)
                },
            }
        else:
            freq = s.astype(str).value_counts(normalize=True).head(top)
            out[col] = {"kind": "categorical", "frequencies": {str(k): float(x) for k, x in freq.items()}}
    return out


def feature_dtypes(frame: pd.DataFrame) -> list[dict[str, str]]:
    return [
        {"name": c, "dtype": "float" if pd.api.types.is_numeric_dtype(frame[c]) else "string"}
        for c in frame.columns
    ]


DRIFT_BINS = 10
DRIFT_TOP = 20  # categories kept per categorical feature; the rest count as one "other" bin


def drift_bins(frame: pd.DataFrame, scores: np.ndarray[Any, Any]) -> dict[str, Any]:
    """Per feature (and ``score``): the bins live traffic is counted in, with the held-out counts.

    Numeric: interior edges at the held-out deciles (duplicates merged, so a feature with many
    equal values gets fewer, wider bins); bin ``i`` holds values in ``(edges[i-1], edges[i]]``,
    the first and last are open-ended, missing values have a bin of their own at the end.
    Categorical: the most frequent values, then one bin for any other value.
    """
    out: dict[str, Any] = {}
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_numeric_dtype(s):
            out[str(col)] = numeric_bins(s.to_numpy(dtype=np.float64))
        else:
            values = s.astype(str)
            top = [str(k) for k in values.value_counts().head(DRIFT_TOP).index]
            known = values.isin(top)
            counts = [int((values == k).sum()) for k in top] + [int((~known).sum())]
            out[str(col)] = {"kind": "categorical", "categories": top, "counts": counts}
    out["score"] = numeric_bins(np.asarray(scores, dtype=np.float64).reshape(-1))
    return out


def numeric_bins(v: np.ndarray[Any, Any]) -> dict[str, Any]:
    finite = v[~np.isnan(v)]
    qs = np.linspace(0, 1, DRIFT_BINS + 1)[1:-1]
    edges = np.unique(np.quantile(finite, qs)) if finite.size else np.array([])
    idx = np.searchsorted(edges, finite, side="left")
    counts = [*np.bincount(idx, minlength=len(edges) + 1).tolist(), int(np.isnan(v).sum())]
    return {"kind": "numeric", "edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}
