"""Prometheus metrics, exposed on the REST port when ``--monitoring_config_file`` enables them.

Metric names follow TF-Serving's exporter (``/tensorflow/serving/request_count``
becomes ``:tensorflow:serving:request_count``; prometheus_client adds ``_total``
to counters), latencies are in microseconds with TF-Serving's bucket layout
(10 x 1.8^i, 33 buckets). Where TF-Serving labels requests by model only, we
also label them by version and signature. Every metric lives in this object's
own registry, never in prometheus_client's global one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

DEFAULT_PATH = "/monitoring/prometheus/metrics"
LATENCY_BUCKETS_US = tuple(10.0 * 1.8**i for i in range(33))
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass
class CallInfo:
    """What one request touched; filled in as the request is resolved, recorded at its end."""

    api: str
    entrypoint: str
    model: str = ""
    version: str = ""
    signature: str = ""
    started: float = field(default_factory=time.perf_counter)


class Metrics:
    """Request, load, poll and batching metrics in a private registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # TF-Serving exports no *_created
        self.registry = CollectorRegistry(auto_describe=True)
        request_labels = ["model_name", "version", "signature_name", "API", "entrypoint"]
        self.request_count = Counter(
            ":tensorflow:serving:request_count",
            "The total number of requests.",
            [*request_labels, "status"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            request_labels,
            buckets=LATENCY_BUCKETS_US,
            registry=self.registry,
        )
        self.load_attempts = Counter(
            ":tensorflow:cc:saved_model:load_attempt_count",
            "The number of times a SavedModel was attempted to be loaded.",
            ["model_path", "status"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            ":tensorflow:serving:batching_session:processed_batch_size",
            "Rows per batch run by the batch scheduler, padding included.",
            ["model_name", "version", "signature_name"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.padding_rows = Counter(
            ":tensorflow:serving:batching_session:padding_size",
            "Rows added to batches to reach an allowed batch size.",
            ["model_name", "version", "signature_name"],
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, ...], tuple[Any, Any]] = {}
        self.file_system_polls = Counter(
            "graph_server_file_system_polls",
            "Passes over the model base paths looking for versions (counted as each starts).",
            registry=self.registry,
        )

    def watch_batch_queue(self, queued_rows: Callable[[], int]) -> None:
        gauge = Gauge(
            "graph_server_batch_queue_rows",
            "Rows waiting in the batch scheduler's queues.",
            registry=self.registry,
        )
        gauge.set_function(lambda: float(queued_rows()))

    def record(self, info: CallInfo, status: str) -> None:
        key = (info.model, info.version, info.signature, info.api, info.entrypoint, status)
        children = self._request_children.get(key)
        if children is None:
            # prometheus_client validates and locks on every labels() call; the children are
            # the same objects each time, so look them up once per label set.
            latency = self.request_latency.labels(*key[:-1]) if status == "OK" else None
            children = self._request_children.setdefault(key, (self.request_count.labels(*key), latency))
        count, latency = children
        count.inc()
        if latency is not None:
            latency.observe((time.perf_counter() - info.started) * 1e6)

    def record_load(self, path: str, ok: bool) -> None:
        self.load_attempts.labels(path, "success" if ok else "fail").inc()

    def record_batch(self, servable: Any, signature: str, size: int, padded: int) -> None:
        labels = (servable.name, str(servable.version), signature)
        self.batch_size.labels(*labels).observe(padded)
        if padded > size:
            self.padding_rows.labels(*labels).inc(padded - size)

    def page(self) -> bytes:
        return generate_latest(self.registry)
