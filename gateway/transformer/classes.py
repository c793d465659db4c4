"""Feature-transformer building blocks that fitted pickles may reference.

A pickle stores a class by its import path, so every custom class a model's
transformer uses must live in the installed ``gateway`` package: the logic
service unpickles with an allow-list of roots (see ``gateway.artifacts``) and
never has a model's fit script on its path. Classes here follow the
scikit-learn estimator API and use numpy only (no TensorFlow, no pandas on the
transform path).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class CyclicalEncoder(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Encode a periodic value (hour of day, day of week) as ``sin``/``cos`` of its phase.

    Hour 23 and hour 0 end up next to each other, which a scaler or one-hot
    encoding cannot express. Each input column yields two output columns.
    """

    def __init__(self, period: float = 24.0) -> None:
        self.period = period

    def fit(self, x: Any, y: Any = None) -> CyclicalEncoder:
        self.n_features_in_ = np.asarray(x).reshape(len(x), -1).shape[1]
        return self

    def transform(self, x: Any) -> np.ndarray[Any, Any]:
        values = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        phase = 2.0 * np.pi * values / self.period
        return np.concatenate([np.sin(phase), np.cos(phase)], axis=1)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray[Any, Any]:
        names = list(input_features) if input_features is not None else ["x"]
        return np.asarray([f"{n}_sin" for n in names] + [f"{n}_cos" for n in names], dtype=object)
