"""The scoring pipeline, free of any web framework.

``Scorer.score(payload)`` runs validate -> features -> transform -> predict ->
post-process and returns the response body and per-stage timings. The version
manager pins each request to one model version for its whole life: the transformer
and the graph (or estimator) of that version, never a mix. If the graph turns out
not to serve the pinned version (the tiers disagree for a moment during a switch),
a request that named no version is run again once on the version now chosen; one
that named a version gets a 503, which is safe to retry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from gateway.errors import GraphVersionMissing
from gateway.featurestore.reader import CacheUse, FeatureReader, Features
from gateway.logic.postprocess import PostProcessor
from gateway.logic.predictors import Predictor
from gateway.logic.request import RequestValidator, ScoreRequest
from gateway.logic.shadow import Shadow
from gateway.logic.versions.loader import ModelVersion
from gateway.logic.versions.manager import Leased, VersionManager
from gateway.logic.warmup import warmup_payload
from gateway.spec import GraphInput, GraphModelSpec, ModelSpec
from gateway.transformer.stage import ColumnAssembler

STAGES = ("validate", "features", "transform", "graph", "post")
Array = np.ndarray[Any, Any]


@dataclass
class Scored:
    data: list[dict[str, Any]]
    model: dict[str, Any]  # name, version, and the label that chose it (if one did)
    timings: dict[str, float] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    cache: dict[str, CacheUse] = field(default_factory=dict)  # cached view -> entities held / read


class ScoringEvents(Protocol):
    """What the scorer reports beyond the answer (the web layer turns it into metrics)."""

    def version_event(self, model: str, version: int, event: str, detail: str) -> None: ...

    def shadow_scored(self, model: str, version: int, diffs: list[float]) -> None: ...

    def shadow_dropped(self, model: str, reason: str) -> None: ...


class NoEvents:
    def version_event(self, model: str, version: int, event: str, detail: str) -> None:
        pass

    def shadow_scored(self, model: str, version: int, diffs: list[float]) -> None:
        pass

    def shadow_dropped(self, model: str, reason: str) -> None:
        pass


class Scorer:
    """Everything one model needs to answer ``/get_score``, built once per worker."""

    def __init__(
        self, spec: ModelSpec, features: FeatureReader, predictor: Predictor, versions: VersionManager
    ) -> None:
        self.spec = spec
        self.validator = RequestValidator(spec)
        self.features = features
        self.predictor = predictor
        self.versions = versions
        self.post = PostProcessor(spec.postprocess)
        self.assemble = ColumnAssembler(spec)
        # An in-process estimator takes the transformed matrix as its one input.
        self.inputs = spec.graph.inputs if isinstance(spec, GraphModelSpec) else {"inputs": GraphInput()}
        self.events: ScoringEvents = NoEvents()
        self.shadow = Shadow(self, spec.versions.shadow.queue) if spec.versions.shadow is not None else None
        versions.warm = self.warm
        versions.events = lambda version, event, detail: self.events.version_event(
            spec.name, version, event, detail
        )

    def score(self, payload: Any) -> Scored:
        t0 = time.perf_counter()
        req = self.validator.validate(payload)
        t1 = time.perf_counter()
        feats = self.features.fetch(req.entity_ids)
        times = [t0, t1, time.perf_counter()]
        try:
            scored = self._leased(req, feats, times)
        except GraphVersionMissing as e:
            self.versions.missing(e.version, e.msg)
            if req.version is not None or req.label is not None:
                raise
            scored = self._leased(req, feats, times[:3])  # once more, on the version chosen now
        if self.shadow is not None:
            self.shadow.offer(req, feats, scored)
        return scored

    def _leased(self, req: ScoreRequest, feats: Features, times: list[float]) -> Scored:
        if req.label is not None and req.label not in self.versions.routing.labels:
            self.versions.refresh_labels()  # moved a moment ago, before this worker's next poll
        with self.versions.lease(req.version, req.label, req.routing_key) as leased:
            return self._run(req, feats, leased, times)

    def _run(self, req: ScoreRequest, feats: Features, leased: Leased, times: list[float]) -> Scored:
        raw = self.predict(req, feats, leased.mv, times)
        data = self._shape(req, raw)
        times.append(time.perf_counter())
        timings = {stage: b - a for stage, a, b in zip(STAGES, times, times[1:], strict=False)}
        model: dict[str, Any] = {"name": self.spec.name, "version": leased.mv.version}
        if leased.via is not None:
            model["label"] = leased.via
        return Scored(data=data, model=model, timings=timings, missing=feats.missing, cache=feats.cache)

    def predict(self, req: ScoreRequest, feats: Features, mv: ModelVersion, times: list[float]) -> Array:
        """Transform with ``mv``'s transformer and run ``mv``'s model; appends the stage end times."""
        matrix = mv.transform(self.assemble(req.rows, req.shared_row, feats.columns), req.size)
        times.append(time.perf_counter())
        raw = self.predictor.predict(self.model_inputs(matrix, feats), mv)
        times.append(time.perf_counter())
        return raw

    def _shape(self, req: ScoreRequest, raw: Array) -> list[dict[str, Any]]:
        if self.spec.request.form == "ranking":
            return self.post.ranking(raw, req.item_ids, req.top_k)
        return self.post.records(raw)

    def model_inputs(self, matrix: Array, feats: Features) -> dict[str, Array]:
        return {
            alias: matrix if src.view is None else feats.vectors[src.view]
            for alias, src in self.inputs.items()
        }

    def warm(self, mv: ModelVersion) -> None:
        """One request through the full path pinned to ``mv``: features, transform, model, post-processing."""
        req = self.validator.validate(warmup_payload(self.spec, mv.manifest, 0))
        feats = self.features.fetch(req.entity_ids)
        self._shape(req, self.predict(req, feats, mv, []))
