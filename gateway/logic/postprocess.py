"""Stage 5: turn raw graph outputs into the scores clients receive."""

from __future__ import annotations

from typing import Any

import numpy as np

from gateway.spec import PostprocessSpec


def _sigmoid(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _softmax(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


class PostProcessor:
    """Activation -> calibration -> threshold/labels -> (ranking) sort and cut."""

    def __init__(self, spec: PostprocessSpec) -> None:
        self.spec = spec

    def scores(self, raw: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        s = raw.astype(np.float64, copy=False)
        if s.ndim == 2 and s.shape[1] == 1:
            s = s[:, 0]
        if self.spec.activation == "sigmoid":
            s = _sigmoid(s)
        elif self.spec.activation == "softmax":
            s = _softmax(s if s.ndim == 2 else s[:, None])
        cal = self.spec.calibration
        if cal is not None and s.ndim == 1:
            s = _sigmoid(cal.a * s + cal.b) if cal.method == "platt" else np.interp(s, cal.x, cal.y)
        return s

    def records(
        self, raw: np.ndarray[Any, Any], defaulted: list[list[str]] | None = None
    ) -> list[dict[str, Any]]:
        """One record per row; ``defaulted`` (per row, the feature views scored from their defaults)
        marks the rows the feature store had no data for."""
        out = self._records(raw)
        if defaulted is not None:
            for rec, views in zip(out, defaulted, strict=True):
                if views:
                    rec["defaulted"] = views
        return out

    def _records(self, raw: np.ndarray[Any, Any]) -> list[dict[str, Any]]:
        s = self.scores(raw)
        key = self.spec.score_field
        if s.ndim == 2:  # multi-class: best class, its probability, and all of them
            labels = self.spec.labels or [str(i) for i in range(s.shape[1])]
            best = s.argmax(axis=1)
            return [
                {
                    key: float(row[b]),
                    "label": labels[b],
                    "scores": dict(zip(labels, map(float, row), strict=True)),
                }
                for row, b in zip(s, best, strict=True)
            ]
        out: list[dict[str, Any]] = [{key: v} for v in s.tolist()]
        if self.spec.threshold is not None:
            t = self.spec.threshold
            names = self.spec.labels
            for rec, v in zip(out, s.tolist(), strict=True):
                hit = v >= t
                rec["label"] = (names[1] if hit else names[0]) if names else int(hit)
        return out

    def ranking(
        self,
        raw: np.ndarray[Any, Any],
        item_ids: list[str],
        top_k: int | None,
        defaulted: list[list[str]] | None = None,
    ) -> list[dict[str, Any]]:
        recs = self.records(raw, defaulted)
        for rec, item in zip(recs, item_ids, strict=True):
            rec["item_id"] = item
        if self.spec.top_k or top_k is not None:
            key = self.spec.score_field
            recs.sort(key=lambda r: r[key], reverse=True)
        return recs[:top_k] if top_k is not None else recs
