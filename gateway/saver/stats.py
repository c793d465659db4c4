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
