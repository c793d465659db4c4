"""The logic service's Prometheus metrics.

Under gunicorn, metrics run in prometheus_client's multiprocess mode: the gunicorn
config points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before any worker
starts, each worker writes its own memory-mapped files, and ``/metrics`` merges them.
Without that variable (tests, a single process) the same code uses plain in-process
values. Each app gets its own registry, so building several apps in one process never
double-registers a metric. Updates go through ``metric_buffer`` (applied in batches).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from flask import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from gateway.logic.drift import DriftCounter, psi_by_feature, version_bins
from gateway.logic.orchestrator import Scored, Scorer
from gateway.logic.web.metric_buffer import PENDING, Tally

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
SHADOW_BUCKETS = (1e-6, 1e-4, 1e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def _counter(r: CollectorRegistry, name: str, doc: str, labels: list[str]) -> Counter:
    return Counter(name, doc, labels, registry=r)


def _histogram(
    r: CollectorRegistry, name: str, doc: str, labels: list[str], buckets: tuple[float, ...]
) -> Histogram:
    return Histogram(name, doc, labels, buckets=buckets, registry=r)


class Metrics:
    """The metric families, registered on a registry of their own; also the scorer's ``ScoringEvents``."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = _counter(r, "gateway_requests", "Requests answered, by endpoint and HTTP status.",
                                 ["model", "version", "endpoint", "status"])  # fmt: skip
        self.latency = _histogram(r, "gateway_request_seconds", "Wall time of a request inside the app.",
                                  ["model", "endpoint"], LATENCY_BUCKETS)  # fmt: skip
        self.stage = _histogram(r, "gateway_stage_seconds", "Wall time of one scoring stage.",
                                ["model", "version", "stage"], LATENCY_BUCKETS)  # fmt: skip
        self.missing = _counter(r, "gateway_missing_entities",
                                "Entities absent from the feature store (served with defaults).", ["model", "view"])  # fmt: skip
        self.cache = _counter(r, "gateway_feature_cache_entities",
                              "Entities of cached feature views a request needed: held by the worker, or read from Redis.",
                              ["model", "view", "source"])  # fmt: skip
        self.items = _histogram(r, "gateway_items_per_request", "Rows scored per request.", ["model"],
                                (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))  # fmt: skip
        self.scores = _histogram(r, "gateway_score", "Distribution of returned scores.", ["model", "version"],
                                 SCORE_BUCKETS)  # fmt: skip
        self.degraded = _counter(r, "gateway_degraded",
                                 "Answers not from the full path, by reason and by the source that gave them.",
                                 ["model", "reason", "source"])  # fmt: skip
        self.version_events = _counter(r, "gateway_version_events",
                                       "Version lifecycle events per worker: loaded, available, refused, graph_failed, "
                                       "warmup_failed, backend_missing, unloaded.", ["model", "version", "event"])  # fmt: skip
        self.shadow_diff = _histogram(r, "gateway_shadow_score_diff",
                                      "Absolute difference between the shadow version's score and the returned one, per row.",
                                      ["model", "version"], SHADOW_BUCKETS)  # fmt: skip
        self.shadow_drops = _counter(r, "gateway_shadow_dropped",
                                     "Answered requests not shadowed: queue full, shadow version gone, or its scoring failed.",
                                     ["model", "reason"])  # fmt: skip
        self.drift = _counter(r, "gateway_drift_bin",
                              "Served rows per drift bin of each key feature and of the score (full-path answers); "
                              "the bins and their baseline counts are in the version's manifest.",
                              ["model", "version", "feature", "bin"])  # fmt: skip
        self._scorer: Scorer | None = None
        self._drift: dict[int, tuple[DriftCounter, Tally]] = {}

    def watch(self, scorer: Scorer) -> None:
        """Report ``scorer``'s version and circuit states with every scrape (this worker's view)."""
        self._scorer = scorer
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            self.registry.register(States(scorer))

    def record_scored(self, model: str, scored: Scored, score_field: str) -> None:
        """Stage times, missing entities, items, degradation and scores of one answer."""
        version = str(scored.model["version"])
        for stage, seconds in scored.timings.items():
            PENDING.observe(self.stage.labels(model, version, stage), (seconds,))
        for view, n in scored.missing.items():
            if n:
                PENDING.inc(self.missing.labels(model, view), n)
        for view, use in scored.cache.items():
            if use.held:
                PENDING.inc(self.cache.labels(model, view, "worker"), use.held)
            if use.read:
                PENDING.inc(self.cache.labels(model, view, "redis"), use.read)
        PENDING.observe(self.items.labels(model), (len(scored.data),))
        d = scored.degraded
        if d is not None:
            PENDING.inc(self.degraded.labels(model, d.reason, d.source))
        values = [v for rec in scored.data if isinstance(v := rec.get(score_field), float)]
        PENDING.observe(self.scores.labels(model, version), values)
        if d is None and scored.features is not None and isinstance(scored.model["version"], int):
            self._count_drift(model, scored.model["version"], scored, values)

    def _count_drift(self, model: str, version: int, scored: Scored, scores: list[float]) -> None:
        entry = self._drift.get(version)
        if entry is None:
            mv = self._scorer.versions.held(version) if self._scorer is not None else None
            if mv is None:
                return
            counter = DriftCounter(version_bins(mv.manifest))
            slots, family = counter.slots, self.drift

            def child(i: int) -> Any:
                return family.labels(model, str(version), slots[i][0], str(slots[i][1]))

            entry = self._drift[version] = (counter, Tally(counter.size, child))
        counter, tally = entry
        assert scored.features is not None
        PENDING.tally(tally, counter.tally(scored.features.columns, scored.rows or [], scores))

    def request_done(
        self, model: str, scored: Scored | None, endpoint: str, status: int, seconds: float
    ) -> None:
        version = str(scored.model["version"]) if scored is not None else ""
        PENDING.inc(self.requests.labels(model, version, endpoint, str(status)))
        PENDING.observe(self.latency.labels(model, endpoint), (seconds,))

    # -- ScoringEvents -------------------------------------------------
    def version_event(self, model: str, version: int, event: str, detail: str) -> None:
        self.version_events.labels(model, str(version), event).inc()

    def shadow_scored(self, model: str, version: int, diffs: list[float]) -> None:
        PENDING.observe(self.shadow_diff.labels(model, str(version)), diffs)

    def shadow_dropped(self, model: str, reason: str) -> None:
        PENDING.inc(self.shadow_drops.labels(model, reason))

    def exposition(self) -> Response:
        PENDING.flush()  # this worker's counts are current; others' at most one flush interval late
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            if self._scorer is not None:
                registry.register(States(self._scorer))
        else:
            registry = self.registry
        families = list(registry.collect())
        if self._scorer is not None:
            families.append(drift_psi(self._scorer, families))
        return Response(generate_latest(Collected(families)), mimetype=CONTENT_TYPE_LATEST)


class Collected:
    """Metric families already collected, exposed again (with what was computed from them)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def drift_psi(scorer: Scorer, families: list[Metric]) -> GaugeMetricFamily:
    """PSI per version and feature from the drift bins summed over every worker."""
    counts: dict[int, dict[str, dict[int, float]]] = {}
    for family in families:
        if family.name != "gateway_drift_bin":
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            lab = sample.labels
            per = counts.setdefault(int(lab["version"]), {}).setdefault(lab["feature"], {})
            per[int(lab["bin"])] = per.get(int(lab["bin"]), 0.0) + sample.value
    gauge = GaugeMetricFamily(
        "gateway_drift_psi",
        "Population stability index of served rows against the version's held-out baseline, per feature "
        "and for the score (all workers; < 0.1 stable, 0.1-0.25 moderate, > 0.25 significant shift).",
        labels=["model", "version", "feature"],
    )
    for version, per_feature in sorted(counts.items()):
        mv = scorer.versions.held(version)
        if mv is None:
            continue
        for feature, (value, _) in sorted(psi_by_feature(per_feature, version_bins(mv.manifest)).items()):
            gauge.add_metric([scorer.spec.name, str(version), feature], value)
    return gauge


class States:
    """A collector: each version this worker knows with its state, the default version, the circuit."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer

    def collect(self) -> Iterator[Metric]:
        name = self.scorer.spec.name
        states = GaugeMetricFamily(
            "gateway_model_version_state",
            "1 for the state each model version is in (LOADING, AVAILABLE, UNLOADING, END) in this worker.",
            labels=["model", "version", "state"],
        )
        for slot in self.scorer.versions.status():
            states.add_metric([name, str(slot.version), slot.state.name], 1.0)
        yield states
        yield _gauge("gateway_default_version", "The version requests naming none go to (0: none available).",
                     name, float(self.scorer.versions.routing.default or 0))  # fmt: skip
        breaker = self.scorer.breaker
        if breaker is not None:
            yield _gauge("gateway_circuit_state", "The graph's circuit in this worker: 0 closed, 1 half-open, 2 open.",
                         name, float(breaker.state.value))  # fmt: skip
            opened = CounterMetricFamily("gateway_circuit_opened", "Times the graph's circuit opened in this worker.",
                                         labels=["model"])  # fmt: skip
            opened.add_metric([name], float(breaker.opened))
            yield opened


def _gauge(metric: str, doc: str, model: str, value: Any) -> GaugeMetricFamily:
    g = GaugeMetricFamily(metric, doc, labels=["model"])
    g.add_metric([model], value)
    return g
