"""The fallback chain: the first source of the spec's ``fallback.chain`` that can answer.

``light_model``: the version's linear model over the transformed features (in-process,
numpy); ``precomputed``: scores loaded into the feature store like any view (one round
trip, read only when needed); ``default``: the spec's static score. Each gives the
model's output scale (what the graph would return), post-processed as the graph's would be.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from gateway.errors import GatewayError
from gateway.featurestore.reader import FeatureReader
from gateway.logic.request import ScoreRequest
from gateway.logic.versions.loader import ModelVersion
from gateway.spec import FallbackSpec, ModelSpec

log = logging.getLogger("gateway.logic")
Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Fallback:
    raw: Array  # one value per row, on the model's output scale
    source: str  # light_model | precomputed | default


class FallbackChain:
    def __init__(self, spec: ModelSpec, fallback: FallbackSpec, client: Any, cluster: bool) -> None:
        self.spec = fallback
        self.precomputed: FeatureReader | None = None
        if fallback.precomputed is not None:
            view = next(v for v in spec.feature_views if v.name == fallback.precomputed.view)
            self.precomputed = FeatureReader(spec, client, cluster, views=[view])

    def answer(self, req: ScoreRequest, mv: ModelVersion | None, matrix: Array | None) -> Fallback:
        """Scores from the first source that works; raises the last failure if none does."""
        failure: GatewayError | None = None
        for source in self.spec.chain:
            try:
                raw = self._source(source, req, mv, matrix)
            except GatewayError as e:
                failure = e
                continue
            if raw is not None:
                return Fallback(raw, source)
        raise failure or GatewayError(
            "no fallback source could answer", status=503, code="fallback_unavailable"
        )

    def _source(
        self, source: str, req: ScoreRequest, mv: ModelVersion | None, matrix: Array | None
    ) -> Array | None:
        if source == "light_model":
            if mv is None or mv.light is None or matrix is None:
                return None
            return mv.light(matrix)
        if source == "precomputed":
            return self._precomputed(req)
        return np.full(req.size, float(self.spec.default_score or 0.0))

    def _precomputed(self, req: ScoreRequest) -> Array | None:
        pre = self.spec.precomputed
        if pre is None or self.precomputed is None:
            return None
        feats = self.precomputed.fetch(req.entity_ids)
        if feats.unavailable:  # every score would be the view's default: not a precomputed answer
            return None
        return np.asarray(feats.columns[pre.field], dtype=np.float64)
