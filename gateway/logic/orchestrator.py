"""The scoring pipeline, free of any web framework.

``Scorer.score(payload)`` runs validate -> features -> transform -> predict ->
post-process and returns the response body and per-stage timings. A model
version bundles the transformer with the graph version it was trained with;
every Predict is pinned to the version whose transformer produced its inputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gateway.errors import UnknownVersion
from gateway.featurestore.reader import CacheUse, FeatureReader, Features
from gateway.logic.postprocess import PostProcessor
from gateway.logic.request import RequestValidator, ScoreRequest
from gateway.spec import GraphInput, GraphModelSpec, ModelSpec
from gateway.transformer.stage import ColumnAssembler, Transform

STAGES = ("validate", "features", "transform", "graph", "post")


class Predictor(Protocol):
    """Runs the model proper: the graph service over gRPC, or an in-process estimator."""

    def predict(self, inputs: dict[str, np.ndarray[Any, Any]], version: int) -> np.ndarray[Any, Any]: ...

    def check(self, version: int) -> str | None:
        """None when ``version`` can be served; otherwise a reason (shown on ``/ready``)."""


@dataclass
class ModelVersion:
    """One published version as this worker holds it: the transformer and where it came from."""

    version: int
    path: Path
    manifest: dict[str, Any]
    transform: Transform


@dataclass
class Scored:
    data: list[dict[str, Any]]
    model: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    cache: dict[str, CacheUse] = field(default_factory=dict)  # cached view -> entities held / read


class Scorer:
    """Everything one model needs to answer ``/get_score``, built once per worker."""

    def __init__(
        self,
        spec: ModelSpec,
        features: FeatureReader,
        versions: dict[int, ModelVersion],
        predictor: Predictor,
        labels: dict[str, int] | None = None,
    ) -> None:
        self.spec = spec
        self.validator = RequestValidator(spec)
        self.features = features
        self.versions = versions
        self.default_version = max(versions)
        self.labels = labels or {}
        self.predictor = predictor
        self.post = PostProcessor(spec.postprocess)
        self.assemble = ColumnAssembler(spec)
        # An in-process estimator takes the transformed matrix as its one input.
        self.inputs = spec.graph.inputs if isinstance(spec, GraphModelSpec) else {"inputs": GraphInput()}

    def score(self, payload: Any) -> Scored:
        t0 = time.perf_counter()
        req = self.validator.validate(payload)
        mv = self.pick_version(req)
        t1 = time.perf_counter()
        feats = self.features.fetch(req.entity_ids)
        t2 = time.perf_counter()
        matrix = mv.transform(self.assemble(req.rows, req.shared_row, feats.columns), req.size)
        t3 = time.perf_counter()
        raw = self.predictor.predict(self.model_inputs(matrix, feats), mv.version)
        t4 = time.perf_counter()
        if self.spec.request.form == "ranking":
            data = self.post.ranking(raw, req.item_ids, req.top_k)
        else:
            data = self.post.records(raw)
        t5 = time.perf_counter()
        timings = dict(zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True))
        return Scored(
            data=data,
            model={"name": self.spec.name, "version": mv.version},
            timings=timings,
            missing=feats.missing,
            cache=feats.cache,
        )

    def pick_version(self, req: ScoreRequest) -> ModelVersion:
        version = req.version
        if req.label is not None:
            if req.label not in self.labels:
                raise UnknownVersion(f"label {req.label!r} is not served (known: {sorted(self.labels)})")
            version = self.labels[req.label]
        if version is None:
            return self.versions[self.default_version]
        mv = self.versions.get(version)
        if mv is None:
            raise UnknownVersion(f"version {version} is not served (serving {sorted(self.versions)})")
        return mv

    def model_inputs(self, matrix: np.ndarray[Any, Any], feats: Features) -> dict[str, np.ndarray[Any, Any]]:
        return {
            alias: matrix if src.view is None else feats.vectors[src.view]
            for alias, src in self.inputs.items()
        }
