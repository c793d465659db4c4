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
from gateway.featurestore.reader import FeatureReader, Features
from gateway.logic.postprocess import PostProcessor
from gateway.logic.request import RequestValidator, ScoreRequest
from gateway.spec import ModelSpec
from gateway.transformer.columns import Column, Defer, infer
from gateway.transformer.stage import Transform

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
    cache: dict[str, tuple[int, int]] = field(default_factory=dict)  # cached view -> (held, read)


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
        self.graph_inputs = spec.graph.inputs if spec.graph is not None else {"inputs": "transformed"}

    def score(self, payload: Any) -> Scored:
        t0 = time.perf_counter()
        req = self.validator.validate(payload)
        mv = self.pick_version(req)
        t1 = time.perf_counter()
        feats = self.features.fetch(req.entity_ids)
        t2 = time.perf_counter()
        matrix = mv.transform(self.transform_columns(req, feats), req.size)
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

    def transform_columns(self, req: ScoreRequest, feats: Features) -> dict[str, Any]:
        cols: dict[str, Any] = dict(feats.columns)
        rows = req.rows
        if req.shared_row and rows:  # one context for every item: infer each field once
            for name in self.validator.known:
                cols[name] = broadcast(rows[0][name], len(rows))
            return cols
        for name in self.validator.known:
            cols[name] = [r[name] for r in rows]
        return cols

    def model_inputs(self, matrix: np.ndarray[Any, Any], feats: Features) -> dict[str, np.ndarray[Any, Any]]:
        out = {}
        for alias, source in self.graph_inputs.items():
            if source == "transformed":
                out[alias] = matrix
            else:  # "view:<vector view>"
                out[alias] = feats.vectors[source.split(":", 1)[1]]
        return out


def broadcast(value: Any, n: int) -> Column | list[Any]:
    """The column of ``n`` copies of ``value``, inferred once (pandas infers it the same way)."""
    try:
        col = infer([value])
    except Defer:
        return [value] * n
    return Column(col.kind, np.repeat(col.values, n))
