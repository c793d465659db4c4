"""A compiled estimator: numpy arrays and the few formulas scikit-learn applies to them.

Two shapes cover the supported estimators:

* **linear**: ``decision = x @ coef.T + intercept`` (``coef`` is ``(K, F)``);
* **trees**: every tree's nodes stacked into flat arrays (feature, threshold, children, which
  way a missing value goes, leaf values), evaluated for all trees and rows at once, one tree
  level per step. Inputs are cast to float32 first, as scikit-learn's trees do, so thresholds
  compare exactly as they did at fit time. ``combine`` says how leaf values add up: the mean of
  normalised class shares (forests, trees), or ``init + rate * sum`` per class (boosting).

``link`` turns decisions into probabilities: ``logistic`` (binary: ``[1 - s, s]``),
``softmax``, ``ovr`` (sigmoids normalised per row), or none (regressors).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]
FORMAT = 1
COMPILED_FILE = "estimator.compiled.npz"


@dataclass
class CompiledEstimator:
    """What ``estimator.compiled.npz`` holds; its methods mirror the estimator's."""

    header: dict[str, Any]
    arrays: dict[str, Array]

    @property
    def kind(self) -> str:
        return str(self.header["kind"])

    @property
    def classes(self) -> Array | None:
        return self.arrays.get("classes")

    # -- the estimator's methods ---------------------------------------------------------
    def decision_function(self, x: Array) -> Array:
        raw = self._raw(np.asarray(x, dtype=np.float64))
        if raw.shape[1] == 1:
            return raw[:, 0]
        return raw

    def predict_proba(self, x: Array) -> Array:
        link = self.header["link"]
        if link == "shares":  # trees and forests: class shares averaged over trees
            return self._raw(np.asarray(x, dtype=np.float64))
        raw = self._raw(np.asarray(x, dtype=np.float64))
        if link == "logistic":
            s = _expit(raw[:, 0])
            return np.column_stack([1.0 - s, s])
        if link == "softmax":
            return _softmax(raw)
        if link == "ovr":
            p = _expit(raw)
            return np.asarray(p / p.sum(axis=1, keepdims=True))
        raise AttributeError(f"a {self.header['estimator']} has no predict_proba")

    def predict(self, x: Array) -> Array:
        if self.classes is None:  # a regressor
            raw = self._raw(np.asarray(x, dtype=np.float64))
            return raw[:, 0] if raw.shape[1] == 1 else raw
        if self.header["link"] == "logistic" or (self.header["link"] != "shares" and self.kind == "linear"):
            raw = self._raw(np.asarray(x, dtype=np.float64))
            best = (raw[:, 0] > 0).astype(np.int64) if raw.shape[1] == 1 else raw.argmax(axis=1)
        else:
            best = self.predict_proba(x).argmax(axis=1)
        return np.asarray(self.classes[best])

    def has(self, method: str) -> bool:
        if method == "predict":
            return True
        if method == "decision_function":
            return self.header["link"] != "shares" and self.classes is not None
        if method == "predict_proba":
            return self.header["link"] in ("shares", "logistic", "softmax", "ovr")
        return False

    # -- evaluation -----------------------------------------------------------------------
    def _raw(self, x: Array) -> Array:
        if x.ndim != 2 or x.shape[1] != self.header["n_features"]:
            raise ValueError(f"expected {self.header['n_features']} features, got shape {x.shape}")
        a = self.arrays
        if self.kind == "linear":
            return np.asarray(x @ a["coef"].T + a["intercept"])
        leaves = self._leaves(x.astype(np.float32).astype(np.float64))  # (trees, rows)
        values = a["value"][leaves]  # (trees, rows, K)
        if self.header["combine"] == "mean":
            return np.asarray(values.mean(axis=0))
        # boosting: each tree adds to its own class's raw score
        k = a["init"].shape[0]
        raw = np.tile(a["init"], (x.shape[0], 1))
        per_class = np.zeros((k, x.shape[0]))
        np.add.at(per_class, a["tree_class"], values[:, :, 0])
        return np.asarray(raw + self.header["rate"] * per_class.T)

    def _leaves(self, x: Array) -> Array:
        a = self.arrays
        feature, threshold, left, right, missing_left = (
            a["feature"],
            a["threshold"],
            a["left"],
            a["right"],
            a["missing_left"],
        )
        rows = np.arange(x.shape[0])[None, :]
        node = np.repeat(a["roots"][:, None], x.shape[0], axis=1)
        for _ in range(int(self.header["depth"])):
            f = feature[node]
            leaf = f < 0
            if leaf.all():
                break
            v = x[rows, np.where(leaf, 0, f)]
            go_left = np.where(np.isnan(v), missing_left[node], v <= threshold[node])
            node = np.where(leaf, node, np.where(go_left, left[node], right[node]))
        return node

    # -- file format ----------------------------------------------------------------------
    def save(self, path: Path) -> None:
        buf = io.BytesIO()
        header = np.frombuffer(json.dumps(self.header).encode(), dtype=np.uint8)
        contents: dict[str, Any] = {"__header__": header, **self.arrays}
        np.savez(buf, **contents)
        path.write_bytes(buf.getvalue())

    @classmethod
    def load(cls, path: Path) -> CompiledEstimator:
        with np.load(path, allow_pickle=False) as npz:
            header = json.loads(bytes(npz["__header__"]).decode())
            arrays = {k: npz[k] for k in npz.files if k != "__header__"}
        if header.get("format") != FORMAT:
            raise ValueError(
                f"{path}: compiled estimator format {header.get('format')}, this code reads {FORMAT}"
            )
        return cls(header, arrays)


def _expit(z: Array) -> Array:
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


def _softmax(z: Array) -> Array:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))
