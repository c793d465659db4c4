"""Failure paths: graph and Redis outages, deadlines, fail-over, and bad input touching nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from flask import Flask

from gateway.logic.web.app import create_app
from gateway.procs import Proc, free_port
from gateway.settings import Settings
from tests.conftest import GraphFactory
from tests.support import REPO

pytestmark = pytest.mark.integration

EXAMPLE = json.loads((REPO / "examples" / "risk.json").read_text())


def _app(models: Path, redis_url: str, targets: list[int], **kw: Any) -> Flask:
    return create_app(
        Settings(
            model="risk",
            models_root=models,
            redis_url=redis_url,
            graph_targets=[f"127.0.0.1:{p}" for p in targets],
            **kw,
        )
    )


def _error(app: Flask) -> tuple[int, str]:
    r = app.test_client().post("/get_score", json=EXAMPLE)
    body = r.get_json()
    assert "Traceback" not in r.get_data(as_text=True)
    return r.status_code, body.get("error", "")


def test_graph_down_at_start_is_503_naming_the_graph(
    strict: Path, risk_features: Callable[[int], str]
) -> None:
    """A worker whose graph is unreachable loads the transformer but makes no version available."""
    app = _app(strict, risk_features(5), [free_port()], graph_deadline_ms=500)
    r = app.test_client().post("/get_score", json=EXAMPLE)
    assert (r.status_code, r.get_json()["error"]) == (503, "version_unavailable")
    assert "graph" in r.get_json()["msg"] and r.headers["Retry-After"] == "1"


def test_graph_gone_after_start_is_503(
    strict: Path, built_models: Path, risk_features: Callable[[int], str], start_graph: GraphFactory
) -> None:
    proc, port = start_graph("--model_name=risk", f"--model_base_path={built_models / 'risk'}")
    app = _app(strict, risk_features(5), [port], graph_deadline_ms=500)
    assert app.test_client().post("/get_score", json=EXAMPLE).status_code == 200
    proc.stop()
    assert _error(app) == (503, "graph_unavailable")


def test_graph_deadline_is_504(
    strict: Path,
    built_models: Path,
    risk_features: Callable[[int], str],
    start_graph: GraphFactory,
    tmp_path: Path,
) -> None:
    # A batching graph that holds every request for half a second before running it.
    params = tmp_path / "batching.txt"
    params.write_text(
        "max_batch_size { value: 64 }\nbatch_timeout_micros { value: 500000 }\n"
        "num_batch_threads { value: 1 }\n"
    )
    _, port = start_graph(
        "--model_name=risk",
        f"--model_base_path={built_models / 'risk'}",
        "--enable_batching",
        f"--batching_parameters_file={params}",
    )
    # Warm-up would never pass within the deadline (the version would not become available).
    app = _app(strict, risk_features(5), [port], graph_deadline_ms=100, warmup=False)
    assert _error(app) == (504, "graph_deadline_exceeded")


def test_redis_down_is_503(strict: Path, risk_graph: int) -> None:
    app = _app(strict, f"redis://127.0.0.1:{free_port()}/0", [risk_graph], redis_timeout_ms=100)
    assert _error(app) == (503, "feature_store_unavailable")


def test_version_the_graph_does_not_serve_is_never_available(
    strict: Path,
    built_models: Path,
    risk_features: Callable[[int], str],
    start_graph: GraphFactory,
    tmp_path: Path,
) -> None:
    # The logic side has version 1's transformer; the graph only has a copy numbered 7.
    import shutil

    base = tmp_path / "risk"
    shutil.copytree(built_models / "risk" / "1", base / "7")
    _, port = start_graph("--model_name=risk", f"--model_base_path={base}")
    app = _app(strict, risk_features(5), [port])
    r = app.test_client().post("/get_score", json=EXAMPLE)
    assert (r.status_code, r.get_json()["error"]) == (
        503,
        "version_unavailable",
    )  # the server's problem: no 4xx
    assert "waiting for the graph to report it AVAILABLE (graph: unknown to it)" in r.get_json()["msg"]
    assert app.test_client().get("/ready").status_code == 503


def _predicts(rest_port: int) -> float:
    """gRPC Predict calls a graph-server has answered, from its own Prometheus page."""
    text = requests.get(f"http://127.0.0.1:{rest_port}/monitoring/prometheus/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(":tensorflow:serving:request_count") and 'API="Predict",entrypoint="GRPC"' in line
    )


def test_round_robin_then_failover_between_two_graph_replicas(
    built_models: Path, risk_features: Callable[[int], str], start_graph: GraphFactory, tmp_path: Path
) -> None:
    monitoring = tmp_path / "monitoring.txt"
    monitoring.write_text('prometheus_config: { enable: true, path: "/monitoring/prometheus/metrics" }\n')
    replicas = []
    for _ in range(2):
        rest = free_port()
        proc, grpc_port = start_graph(
            "--model_name=risk",
            f"--model_base_path={built_models / 'risk'}",
            f"--rest_api_port={rest}",
            f"--monitoring_config_file={monitoring}",
        )
        replicas.append((proc, grpc_port, rest))
    client = _app(
        built_models, risk_features(5), [p for _, p, _ in replicas], graph_deadline_ms=2000
    ).test_client()
    assert all(client.post("/get_score", json=EXAMPLE).status_code == 200 for _ in range(20))
    served = [_predicts(rest) for _, _, rest in replicas]
    assert sum(served) >= 20 and min(served) >= 5, served  # both replicas take traffic
    replicas[0][0].stop()
    codes = [client.post("/get_score", json=EXAMPLE).status_code for _ in range(20)]
    assert codes == [200] * 20


def _commands(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


def test_bad_input_never_reaches_redis(
    built_models: Path, risk_features: Callable[[int], str], risk_graph: int
) -> None:
    url = risk_features(6)
    client = _app(built_models, url, [risk_graph]).test_client()
    r = redis.Redis.from_url(url)
    before = _commands(r)
    bad = [
        {"data": [{**EXAMPLE["data"][0], "loan_amount": float("inf")}]},
        {"data": [{**EXAMPLE["data"][0], "term_months": "36"}]},
        {"data": []},
    ]
    for body in bad:
        assert (
            client.post("/get_score", data=json.dumps(body), content_type="application/json").status_code
            == 400
        )
    assert _commands(r) == before
    assert client.post("/get_score", json=EXAMPLE).status_code == 200
    assert _commands(r) > before  # the probe does see real traffic


def test_redis_restart_is_survived(built_models: Path, risk_graph: int, tmp_path: Path) -> None:
    """Pooled connections go stale when Redis restarts; the next request reconnects instead of failing."""
    from gateway.procs import start_redis

    port = free_port()

    def start() -> Proc:
        return start_redis(tmp_path, port)[0]

    first = start()
    client = _app(built_models, f"redis://127.0.0.1:{port}/0", [risk_graph]).test_client()
    assert client.post("/get_score", json=EXAMPLE).status_code == 200
    first.stop()
    second = start()
    try:
        r = client.post("/get_score", json=EXAMPLE)
        assert r.status_code == 200, r.get_json()  # empty store: defaults, but served
    finally:
        second.stop()
