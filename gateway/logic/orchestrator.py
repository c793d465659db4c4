"""The scoring pipeline, free of any web framework.

``Scorer.score(payload)`` runs validate -> features -> transform -> predict ->
post-process and returns the response body and per-stage timings. The version
manager pins each request to one model version for its whole life: the transformer
and the graph (or estimator) of that version, never a mix. If the graph turns out
not to serve the pinned version (the tiers disagree for a moment during a switch),
a request that named no version is run again once on the version now chosen; one
that named a version gets a 503, which is safe to retry.

Failing soft (``gateway.logic.resilience``): when the graph cannot answer, the spec's
fallback chain does, and the answer says so (``Scored.degraded``); a worker over its
in-flight budget sheds at once; a feature store that cannot be read gives declared
defaults where the spec allows it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gateway.errors import GatewayError, GraphVersionMissing, TooManyRequests, Unavailable, VersionUnavailable
from gateway.featurestore.reader import CacheUse, FeatureReader, Features
from gateway.logic.events import NoEvents, ScoringEvents
from gateway.logic.postprocess import PostProcessor
from gateway.logic.predictors import Predictor
from gateway.logic.request import RequestValidator, ScoreRequest
from gateway.logic.resilience.admission import InFlight, marked_shed, note_shed
from gateway.logic.resilience.breaker import Circuit, CircuitBreaker
from gateway.logic.resilience.fallback import FallbackChain
from gateway.logic.resilience.guard import Degrade, GuardedModel
from gateway.logic.shadow import Shadow
from gateway.logic.versions.loader import ModelVersion
from gateway.logic.versions.manager import VersionManager
from gateway.logic.warmup import warmup_payload
from gateway.spec import GraphInput, GraphModelSpec, ModelSpec
from gateway.transformer.stage import ColumnAssembler

STAGES = ("validate", "features", "transform", "graph", "post")
Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Degraded:
    """Why an answer did not come from the full path, and what gave it."""

    reason: str  # graph_unavailable | graph_deadline | circuit_open | overload | feature_store_unavailable
    source: str  # light_model | precomputed | default | model (the model ran, on default features)
    detail: str = ""
    also: tuple[str, ...] = ()  # further reasons (the feature store as well as the graph)


@dataclass
class Scored:
    data: list[dict[str, Any]]
    model: dict[str, Any]  # name, version, and the label that chose it (if one did)
    timings: dict[str, float] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    cache: dict[str, CacheUse] = field(default_factory=dict)  # cached view -> entities held / read
    degraded: Degraded | None = None
    features: Features | None = None  # what the feature stage read, row-aligned (drift, explain)
    rows: list[dict[str, Any]] | None = None  # the validated request rows


@dataclass
class Attempt:
    """One request on its way: what it has so far (for a fallback to use)."""

    req: ScoreRequest
    feats: Features
    times: list[float]
    mv: ModelVersion | None = None
    via: str | None = None
    matrix: Array | None = None


class Scorer:
    """Everything one model needs to answer ``/get_score``, built once per worker."""

    def __init__(
        self,
        spec: ModelSpec,
        features: FeatureReader,
        predictor: Predictor,
        versions: VersionManager,
        fallback: FallbackChain | None = None,
    ) -> None:
        self.spec = spec
        self.validator = RequestValidator(spec)
        self.features = features
        self.predictor = predictor
        self.versions = versions
        self.fallback = fallback
        self.post = PostProcessor(spec.postprocess)
        self.assemble = ColumnAssembler(spec)
        graph = isinstance(spec, GraphModelSpec)
        self.breaker = CircuitBreaker(spec.circuit) if graph else None
        if self.breaker is not None:  # the manager's status call each poll doubles as a health check
            versions.on_backend = self._graph_checked
        self.model = GuardedModel(predictor, self.breaker)
        self.admission = InFlight(spec.overload.max_in_flight)
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
        if marked_shed() or not self.admission.enter():
            return self._shed(req, t0)
        try:
            return self._score(req, t0)
        finally:
            self.admission.leave()

    def _score(self, req: ScoreRequest, t0: float) -> Scored:
        t1 = time.perf_counter()
        feats = self.features.fetch(req.entity_ids)
        a = Attempt(req, feats, [t0, t1, time.perf_counter()])
        try:
            scored = self._leased(a)
        except GraphVersionMissing as e:
            self.versions.missing(e.version, e.msg)
            if req.version is not None or req.label is not None:
                raise
            a = Attempt(req, feats, a.times[:3])
            scored = self._leased(a)  # once more, on the version chosen now
        except VersionUnavailable as e:  # no version to run: only a source needing none can answer
            scored = self._degraded(a, Degrade("graph_unavailable", e))
        if self.shadow is not None and scored.degraded is None:
            self.shadow.offer(req, feats, scored)
        return scored

    def _leased(self, a: Attempt) -> Scored:
        req = a.req
        if req.label is not None and req.label not in self.versions.routing.labels:
            self.versions.refresh_labels()  # moved a moment ago, before this worker's next poll
        with self.versions.lease(req.version, req.label, req.routing_key) as leased:
            a.mv, a.via = leased.mv, leased.via
            try:
                raw = self.predict(req, a.feats, leased.mv, a.times, a)
            except Degrade as d:
                return self._degraded(a, d)
            return self._finish(a, raw, None)

    def predict(
        self,
        req: ScoreRequest,
        feats: Features,
        mv: ModelVersion,
        times: list[float],
        a: Attempt | None = None,
    ) -> Array:
        """Transform with ``mv``'s transformer and run ``mv``'s model; appends the stage end times."""
        matrix = mv.transform(self.assemble(req.rows, req.shared_row, feats.columns), req.size)
        if a is not None:
            a.matrix = matrix
        times.append(time.perf_counter())
        raw = self.model.predict(self.model_inputs(matrix, feats), mv)
        times.append(time.perf_counter())
        return raw

    def _degraded(self, a: Attempt, d: Degrade) -> Scored:
        """The fallback's answer for a model that could not answer, or the model's error without one."""
        if self.fallback is None:
            raise d.error
        try:
            fb = self.fallback.answer(a.req, a.mv, a.matrix)
        except GatewayError:
            raise d.error from None  # the graph's failure is the one to report
        while len(a.times) < 5:  # the stages that did not finish end now (the graph's: its failed wait)
            a.times.append(time.perf_counter())
        return self._finish(a, fb.raw, Degraded(d.reason, fb.source, d.error.msg))

    def _finish(self, a: Attempt, raw: Array, degraded: Degraded | None) -> Scored:
        data = self._shape(a.req, raw, self._defaulted_rows(a.feats))
        a.times.append(time.perf_counter())
        timings = {stage: b - t for stage, t, b in zip(STAGES, a.times, a.times[1:], strict=False)}
        model: dict[str, Any] = {"name": self.spec.name, "version": a.mv.version if a.mv else None}
        if a.via is not None:
            model["label"] = a.via
        if a.feats.unavailable:
            also = ("feature_store_unavailable",)
            degraded = (
                Degraded(degraded.reason, degraded.source, degraded.detail, also)
                if degraded is not None
                else Degraded("feature_store_unavailable", "model", a.feats.unavailable)
            )
        return Scored(data, model, timings, a.feats.missing, a.feats.cache, degraded, a.feats, a.req.rows)

    def _shed(self, req: ScoreRequest, t0: float) -> Scored:
        """A request over the worker's budget: the fallback's answer, or 429/503 at once (per spec)."""
        note_shed()
        how = self.spec.overload.shed or ("fallback" if self.fallback is not None else "503")
        after = self.spec.overload.retry_after_s
        if how == "fallback" and self.fallback is not None:
            now = time.perf_counter()
            a = Attempt(req, self.features.fetch(req.entity_ids), [t0, now, time.perf_counter()])
            error = Unavailable("over the in-flight budget", code="overloaded", retry_after=after)
            try:  # the light model needs the version's transformer: cheap next to a graph call
                with self.versions.lease(req.version, req.label, req.routing_key) as leased:
                    a.mv, a.via = leased.mv, leased.via
                    a.matrix = self._matrix(req, a.feats, leased.mv)
                    a.times.append(time.perf_counter())
                    return self._degraded(a, Degrade("overload", error))
            except VersionUnavailable:
                return self._degraded(a, Degrade("overload", error))
        msg = f"overloaded: more than {self.spec.overload.max_in_flight} requests in flight; retry later"
        if how == "429":
            raise TooManyRequests(msg, code="overloaded", retry_after=after)
        raise Unavailable(msg, code="overloaded", retry_after=after)

    def _defaulted_rows(self, feats: Features) -> list[list[str]] | None:
        """Per row, the views whose entity the store did not have (None when every row had all)."""
        if not feats.defaulted:
            return None
        rows: list[list[str]] = [[] for _ in range(len(next(iter(feats.defaulted.values()))))]
        for view, mask in feats.defaulted.items():
            for i in np.flatnonzero(mask):
                rows[i].append(view)
        return rows

    def _shape(
        self, req: ScoreRequest, raw: Array, defaulted: list[list[str]] | None = None
    ) -> list[dict[str, Any]]:
        if self.spec.request.form == "ranking":
            return self.post.ranking(raw, req.item_ids, req.top_k, defaulted)
        return self.post.records(raw, defaulted)

    def model_inputs(self, matrix: Array, feats: Features) -> dict[str, Array]:
        return {
            alias: matrix if src.view is None else feats.vectors[src.view]
            for alias, src in self.inputs.items()
        }

    def warm(self, mv: ModelVersion, model: Predictor | GuardedModel | None = None) -> None:
        """One request through the full path pinned to ``mv``: features, transform, model, post-processing.

        ``model`` is the predictor itself by default: warming a version that is not serving yet
        must not count for or against the circuit of the one that is.
        """
        req = self.validator.validate(warmup_payload(self.spec, mv.manifest, 0))
        feats = self.features.fetch(req.entity_ids)
        inputs = self.model_inputs(self._matrix(req, feats, mv), feats)
        self._shape(req, (model or self.predictor).predict(inputs, mv))

    def _graph_checked(self, answered: bool) -> None:
        """Each version poll's status call: the circuit hears whether the graph answered it.

        When the graph answers again while the circuit is open, the poller sends the half-open
        probe itself (a warm-up request on the default version, through the circuit), so the
        circuit closes, and readiness says ``full`` again, without waiting for traffic; and no
        caller's request is the one that finds out whether the graph is really back.
        """
        b = self.breaker
        assert b is not None
        b.health(answered)
        if not answered or b.state == Circuit.CLOSED or self.versions.routing.default is None:
            return
        try:
            with self.versions.lease(None, None, None) as leased:
                self.warm(leased.mv, self.model)
        except (Degrade, GatewayError):  # not time to probe yet, or the probe failed: it stays open
            pass

    def _matrix(self, req: ScoreRequest, feats: Features, mv: ModelVersion) -> Array:
        return mv.transform(self.assemble(req.rows, req.shared_row, feats.columns), req.size)
