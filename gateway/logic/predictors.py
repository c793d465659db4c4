"""Backends that run the model proper for the orchestrator: the graph over gRPC, or an estimator in-process.

Both take the inputs of one request and the version it is pinned to, and tell the
version manager which versions they serve (``served``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from gateway.logic.coalesce import Coalescer
from gateway.logic.graph_client import GraphClient, GraphVersion
from gateway.logic.versions.loader import ModelVersion
from gateway.spec import EstimatorSpec

Array = np.ndarray[Any, Any]


class Predictor(Protocol):
    def predict(self, inputs: dict[str, Array], mv: ModelVersion) -> Array:
        """Raw model output for ``inputs``, computed by exactly version ``mv``."""
        ...

    def served(self) -> dict[int, Any] | None:
        """Versions the backend serves now (None: every loaded version, the model runs in-process)."""
        ...


class GraphPredictor:
    """The TensorFlow backend: Predict on the graph service, pinned to the version, one output tensor."""

    def __init__(self, client: GraphClient, output: str, coalesce_max_rows: int = 0) -> None:
        self.client = client
        self.output = output
        self.coalescer = (
            Coalescer(self._call, client.deadline_s, coalesce_max_rows) if coalesce_max_rows > 0 else None
        )

    def predict(self, inputs: dict[str, Array], mv: ModelVersion) -> Array:
        if self.coalescer is not None:
            return self.coalescer.predict(inputs, mv.version)
        return self.client.predict(inputs, self.output, mv.version)

    def _call(self, inputs: Mapping[str, Array], version: int, left_s: float) -> Array:
        return self.client.predict(inputs, self.output, version, timeout_s=left_s)

    def served(self) -> dict[int, GraphVersion]:
        return self.client.versions()


class SklearnPredictor:
    """The in-process backend: the version's own verified scikit-learn estimator."""

    def __init__(self, spec: EstimatorSpec) -> None:
        self.spec = spec

    def predict(self, inputs: dict[str, Array], mv: ModelVersion) -> Array:
        (x,) = inputs.values()
        out = np.asarray(getattr(mv.estimator, self.spec.method)(x), dtype=np.float64)
        return out[:, self.spec.column] if out.ndim == 2 else out

    def served(self) -> None:
        return None
