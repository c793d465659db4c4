"""Prometheus metrics, JSON access logs and request ids for the logic service.

Under gunicorn, metrics run in prometheus_client's multiprocess mode: the
gunicorn config points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before
any worker starts, each worker writes its own memory-mapped files, and
``/metrics`` merges them. Without that variable (tests, a single process) the
same code uses plain in-process values. Each app gets its own registry, so
building several apps in one process never double-registers a metric.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from gateway.logic.orchestrator import Scored

access_log = logging.getLogger("gateway.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))


class Metrics:
    """The logic service's metric families, registered on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
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

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: label lookup costs more than the update itself."""
        key = (id(metric), labels)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = metric.labels(*labels)
        return c

    def record_scored(self, model: str, scored: Scored, score_field: str) -> None:
        version = str(scored.model["version"])
        for stage, seconds in scored.timings.items():
            self.child(self.stage, model, version, stage).observe(seconds)
        for view, n in scored.missing.items():
            if n:
                self.child(self.missing, model, view).inc(n)
        self.child(self.items, model).observe(len(scored.data))
        values = [v for rec in scored.data if isinstance(v := rec.get(score_field), float)]
        observe_many(self.child(self.scores, model, version), values)

    def exposition(self) -> Response:
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
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
    if len(values) < 4 or bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for v in values:
            hist.observe(v)
        return
    arr = np.asarray(values, dtype=np.float64)
    counts = np.bincount(np.searchsorted(bounds, arr, side="left"), minlength=len(bounds))
    for i in np.flatnonzero(counts[: len(bounds)]):
        buckets[i].inc(int(counts[i]))
    total.inc(float(arr.sum()))


@dataclass
class RequestInfo:
    request_id: str
    started: float


def _request_id() -> str:
    given = request.headers.get("X-Request-ID", "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def install(app: Flask, metrics: Metrics, model: str, log_requests: bool) -> None:
    """Request ids on every response, metrics and one JSON access-log line per request."""

    @app.before_request
    def _start() -> None:
        g.info = RequestInfo(_request_id(), time.perf_counter())

    @app.after_request
    def _finish(resp: Response) -> Response:
        info: RequestInfo | None = g.get("info")
        if info is None:  # a request that failed before our hook ran
            return resp
        elapsed = time.perf_counter() - info.started
        resp.headers["X-Request-ID"] = info.request_id
        endpoint = request.endpoint or "unknown"
        scored: Scored | None = g.get("scored")
        version = str(scored.model["version"]) if scored is not None else ""
        metrics.child(metrics.requests, model, version, endpoint, str(resp.status_code)).inc()
        metrics.child(metrics.latency, model, endpoint).observe(elapsed)
        if log_requests and endpoint not in ("logic.metrics", "logic.health", "logic.ready"):
            access_log.info(_access_line(info, resp, elapsed, model, scored))
        return resp


def _access_line(info: RequestInfo, resp: Response, elapsed: float, model: str, scored: Scored | None) -> str:
    entry: dict[str, Any] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "request_id": info.request_id,
        "method": request.method,
        "path": request.path,
        "status": resp.status_code,
        "ms": round(elapsed * 1000, 3),
        "model": model,
        "remote": request.remote_addr,
    }
    if scored is not None:
        entry["version"] = scored.model["version"]
        entry["items"] = len(scored.data)
        entry["stages_ms"] = {k: round(v * 1000, 3) for k, v in scored.timings.items()}
        if any(scored.missing.values()):
            entry["missing"] = scored.missing
    err = g.get("error_code")
    if err:
        entry["error"] = err
    return orjson.dumps(entry).decode()
