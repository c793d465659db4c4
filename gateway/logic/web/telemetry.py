"""Prometheus metrics, JSON access logs and request ids for the logic service.

Under gunicorn, metrics run in prometheus_client's multiprocess mode: the
gunicorn config points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before
any worker starts, each worker writes its own memory-mapped files, and
``/metrics`` merges them. Without that variable (tests, a single process) the
same code uses plain in-process values. Each app gets its own registry, so
building several apps in one process never double-registers a metric.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from flask import Flask, Request, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from gateway.logic.orchestrator import Scored, Scorer
from gateway.logic.web.accesslog import BufferedLog
from gateway.logic.web.metric_buffer import PENDING, bucket_counts

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
SHADOW_BUCKETS = (1e-6, 1e-4, 1e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


class VersionStates:
    """A collector: each version this worker knows, with its state, and the default version."""

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
        default = GaugeMetricFamily(
            "gateway_default_version",
            "The version requests naming none go to (0: none available).",
            labels=["model"],
        )
        default.add_metric([name], float(self.scorer.versions.routing.default or 0))
        yield default


class Metrics:
    """The logic service's metric families, registered on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._stages: dict[tuple[str, str], dict[str, Any]] = {}
        self._done: dict[tuple[str, Any, str, int], tuple[Any, Any]] = {}
        r = self.registry
        self.requests = Counter(
            "gateway_requests",
            "Requests answered, by endpoint and HTTP status.",
            ["model", "version", "endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "gateway_request_seconds",
            "Wall time of a request inside the app.",
            ["model", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "gateway_stage_seconds",
            "Wall time of one scoring stage.",
            ["model", "version", "stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.missing = Counter(
            "gateway_missing_entities",
            "Entities absent from the feature store (served with defaults).",
            ["model", "view"],
            registry=r,
        )
        self.cache = Counter(
            "gateway_feature_cache_entities",
            "Entities of cached feature views a request needed: held by the worker, or read from Redis.",
            ["model", "view", "source"],
            registry=r,
        )
        self.items = Histogram(
            "gateway_items_per_request",
            "Rows scored per request.",
            ["model"],
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=r,
        )
        self.scores = Histogram(
            "gateway_score",
            "Distribution of returned scores.",
            ["model", "version"],
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.version_events = Counter(
            "gateway_version_events",
            "Version lifecycle events per worker: loaded, available, refused, graph_failed, "
            "warmup_failed, backend_missing, unloaded.",
            ["model", "version", "event"],
            registry=r,
        )
        self.shadow_diff = Histogram(
            "gateway_shadow_score_diff",
            "Absolute difference between the shadow version's score and the returned one, per row.",
            ["model", "version"],
            buckets=SHADOW_BUCKETS,
            registry=r,
        )
        self.shadow_drops = Counter(
            "gateway_shadow_dropped",
            "Answered requests not shadowed: queue full, shadow version gone, or its scoring failed.",
            ["model", "reason"],
            registry=r,
        )
        self._scorer: Scorer | None = None

    def watch(self, scorer: Scorer) -> None:
        """Report ``scorer``'s version states with every scrape (this worker's view)."""
        self._scorer = scorer
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            self.registry.register(VersionStates(scorer))

    # -- ScoringEvents -------------------------------------------------
    def version_event(self, model: str, version: int, event: str, detail: str) -> None:
        self.version_events.labels(model, str(version), event).inc()

    def shadow_scored(self, model: str, version: int, diffs: list[float]) -> None:
        PENDING.observe(self.child(self.shadow_diff, model, str(version)), diffs)

    def shadow_dropped(self, model: str, reason: str) -> None:
        PENDING.inc(self.child(self.shadow_drops, model, reason))

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: label lookup costs more than the update itself."""
        key = (id(metric), labels)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = metric.labels(*labels)
        return c

    def record_scored(self, model: str, scored: Scored, score_field: str) -> None:
        """Stage times, missing entities, items and scores of one answer (applied in batches, see
        ``metric_buffer``)."""
        version = str(scored.model["version"])
        stages = self._stages.get((model, version))
        if stages is None:
            stages = self._stages[(model, version)] = {}
        for stage, seconds in scored.timings.items():
            hist = stages.get(stage)
            if hist is None:
                hist = stages[stage] = self.child(self.stage, model, version, stage)
            PENDING.observe(hist, (seconds,))
        for view, n in scored.missing.items():
            if n:
                PENDING.inc(self.child(self.missing, model, view), n)
        for view, use in scored.cache.items():
            if use.held:
                PENDING.inc(self.child(self.cache, model, view, "worker"), use.held)
            if use.read:
                PENDING.inc(self.child(self.cache, model, view, "redis"), use.read)
        PENDING.observe(self.child(self.items, model), (len(scored.data),))
        values = [v for rec in scored.data if isinstance(v := rec.get(score_field), float)]
        PENDING.observe(self.child(self.scores, model, version), values)

    def request_done(
        self, model: str, scored: Scored | None, endpoint: str, status: int, seconds: float
    ) -> None:
        """Count one answered request and observe its latency."""
        key = (model, scored.model["version"] if scored is not None else "", endpoint, status)
        pair = self._done.get(key)
        if pair is None:
            version = str(key[1])
            pair = self._done[key] = (
                self.child(self.requests, model, version, endpoint, str(status)),
                self.child(self.latency, model, endpoint),
            )
        PENDING.inc(pair[0])
        PENDING.observe(pair[1], (seconds,))

    def exposition(self) -> Response:
        PENDING.flush()  # this worker's counts are current; others' at most one flush interval late
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            if self._scorer is not None:
                registry.register(VersionStates(self._scorer))
        else:
            registry = self.registry
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def observe_many(hist: Any, values: list[float]) -> None:
    """``hist.observe(v)`` for every value, with one update per bucket instead of one per value.

    A ranking request returns hundreds of scores; bucketing them with numpy and
    adding counts is what ``observe`` would do value by value. If the client
    library's histogram internals ever change shape, fall back to ``observe``.
    """
    bounds = getattr(hist, "_upper_bounds", None)
    buckets = getattr(hist, "_buckets", None)
    total = getattr(hist, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for v in values:
            hist.observe(v)
        return
    counts, amount = bucket_counts(bounds, values)
    for i, n in counts:
        buckets[i].inc(n)
    total.inc(amount)


@dataclass(slots=True)
class RequestInfo:
    request_id: str
    started: float


class _RequestIds:
    """Unique request ids without a uuid4 (a ``urandom`` syscall) per request.

    A random 64-bit prefix per process and a counter: 32 hex digits, unique across
    the threads of a worker (``next`` on ``itertools.count`` is atomic) and, with
    the prefix drawn again after every fork, across workers.
    """

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


new_request_id = _RequestIds()


class _Clock:
    """The access log's timestamp, formatted once per second rather than once per request."""

    def __init__(self) -> None:
        self.second = -1
        self.text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self.second:
            self.text = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(second))
            self.second = second
        return self.text


_QUIET = frozenset({"logic.metrics", "logic.health", "logic.ready"})


def install(app: Flask, metrics: Metrics, model: str, log: BufferedLog | None) -> None:
    """Request ids on every response, metrics and one JSON access-log line per request (if ``log``)."""
    clock = _Clock()

    @app.before_request
    def _start() -> None:
        given = request.environ.get("HTTP_X_REQUEST_ID")
        rid = given if given is not None and _REQUEST_ID.match(given) else new_request_id()
        g.info = RequestInfo(rid, time.perf_counter())

    @app.after_request
    def _finish(resp: Response) -> Response:
        state = g.__dict__  # one proxy lookup for the three values this hook reads
        info: RequestInfo | None = state.get("info")
        if info is None:  # a request that failed before our hook ran
            return resp
        elapsed = time.perf_counter() - info.started
        resp.headers["X-Request-ID"] = info.request_id
        req = request._get_current_object()  # type: ignore[attr-defined]
        endpoint = req.endpoint or "unknown"
        scored: Scored | None = state.get("scored")
        status = resp.status_code
        metrics.request_done(model, scored, endpoint, status, elapsed)
        if log is not None and endpoint not in _QUIET:
            line = _access_line(
                req, clock.now(), info, status, elapsed, model, scored, state.get("error_code")
            )
            log.write(line, urgent=status >= 500)
        return resp


def _access_line(
    req: Request,
    ts: str,
    info: RequestInfo,
    status: int,
    elapsed: float,
    model: str,
    scored: Scored | None,
    error: str | None,
) -> bytes:
    entry: dict[str, Any] = {
        "ts": ts,
        "request_id": info.request_id,
        "method": req.method,
        "path": req.path,
        "status": status,
        "ms": round(elapsed * 1000, 3),
        "model": model,
        "remote": req.remote_addr,
    }
    if scored is not None:
        entry["version"] = scored.model["version"]
        entry["items"] = len(scored.data)
        entry["stages_ms"] = {k: round(v * 1000, 3) for k, v in scored.timings.items()}
        if any(scored.missing.values()):
            entry["missing"] = scored.missing
    if error:
        entry["error"] = error
    return orjson.dumps(entry)
