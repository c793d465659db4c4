"""Backends that run the model proper for the orchestrator (the ``Predictor`` protocol)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gateway.errors import GatewayError
from gateway.logic.graph_client import GraphClient
from gateway.spec import EstimatorSpec


class GraphPredictor:
    """The TensorFlow backend: Predict on the graph service, one output tensor."""

    def __init__(self, client: GraphClient, output: str) -> None:
        self.client = client
        self.output = output

    def predict(self, inputs: dict[str, np.ndarray[Any, Any]], version: int) -> np.ndarray[Any, Any]:
        return self.client.predict(inputs, self.output, version)

    def check(self, version: int) -> str | None:
        """None when the graph serves ``version``; otherwise why not."""
        try:
            states = self.client.version_states()
        except GatewayError as e:
            return e.msg
        state = states.get(version)
        if state != "AVAILABLE":
            return f"graph reports version {version} as {state or 'unknown'} (known: {states})"
        return None


class SklearnPredictor:
    """The in-process backend: a verified scikit-learn estimator per loaded version."""

    def __init__(self, estimators: dict[int, Any], spec: EstimatorSpec) -> None:
        self.estimators = estimators
        self.spec = spec

    def predict(self, inputs: dict[str, np.ndarray[Any, Any]], version: int) -> np.ndarray[Any, Any]:
        (x,) = inputs.values()
        out = np.asarray(getattr(self.estimators[version], self.spec.method)(x), dtype=np.float64)
        return out[:, self.spec.column] if out.ndim == 2 else out

    def check(self, version: int) -> str | None:
        return None if version in self.estimators else f"no estimator loaded for version {version}"
