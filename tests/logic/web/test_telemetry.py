"""Probes, metrics, request ids and the OpenAPI document, through the Flask test client."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.logic.web.app import create_app
from gateway.procs import free_port
from gateway.settings import Settings
from tests.support import REPO

pytestmark = pytest.mark.integration

EXAMPLE = json.loads((REPO / "examples" / "risk.json").read_text())


def _settings(models: Path, redis_url: str, graph_port: int, **kw: Any) -> Settings:
    kw.setdefault("graph_deadline_ms", 2000)
    return Settings(
        model="risk", models_root=models, redis_url=redis_url, graph_targets=[f"127.0.0.1:{graph_port}"], **kw
    )


@pytest.fixture(scope="module")
def app(built_models: Path, risk_graph: int, risk_features: Callable[[int], str]) -> Flask:
    return create_app(_settings(built_models, risk_features(3), risk_graph))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        head, value = line.rsplit(" ", 1)
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def test_ready_when_everything_is_up(client: FlaskClient) -> None:
    r = client.get("/ready")
    assert r.status_code == 200, r.get_json()
    checks = r.get_json()["checks"]
    assert checks["feature_store"] == "ok"
    assert checks["versions"]["1"]["state"] == "AVAILABLE" and checks["default_version"] == 1


def test_degraded_but_ready_says_what_is_missing(built_models: Path) -> None:
    """risk answers from its fallback and default features: ready, but not with full answers."""
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(
        _settings(built_models, dead_redis, free_port(), graph_deadline_ms=300, redis_timeout_ms=100)
    )
    r = app.test_client().get("/ready")
    checks = r.get_json()["checks"]
    assert r.status_code == 200 and checks["full"] is False
    assert checks["feature_store"] == "unreachable" and "feature_store_unavailable" in checks["degraded"]
    assert any("no version is available" in d for d in checks["degraded"])


def test_not_ready_names_what_is_missing(strict: Path) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(_settings(strict, dead_redis, free_port(), graph_deadline_ms=300, redis_timeout_ms=100))
    r = app.test_client().get("/ready")
    assert r.status_code == 503
    body = r.get_json()
    assert body["error"] == "not_ready" and body["code"] == 503
    text = " ".join(body["details"])
    assert "Redis" in text and "no version is available (version 1: waiting for the graph" in text
    assert app.test_client().get("/health").status_code == 200  # alive, just not ready


def test_request_id_is_echoed_or_made(client: FlaskClient) -> None:
    r = client.post("/get_score", json=EXAMPLE, headers={"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"
    made = client.post("/get_score", json=EXAMPLE, headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["X-Request-ID"] != "bad id with spaces" and len(made.headers["X-Request-ID"]) == 32


def test_metrics_count_requests_stages_and_scores(client: FlaskClient) -> None:
    before = client.get("/metrics").get_data(as_text=True)
    client.post("/get_score", json=EXAMPLE)
    client.post("/get_score", json={"data": [{"customer_id": "x"}]})  # 400
    after = client.get("/metrics").get_data(as_text=True)

    def delta(name: str, **labels: str) -> float:
        return _metric(after, name, **labels) - _metric(before, name, **labels)

    assert delta("gateway_requests_total", endpoint="logic.get_score", status="200") == 1
    assert delta("gateway_requests_total", endpoint="logic.get_score", status="400") == 1
    for stage in ("validate", "features", "transform", "graph", "post"):
        assert delta("gateway_stage_seconds_count", stage=stage, version="1") == 1
    assert delta("gateway_score_count", model="risk") == len(EXAMPLE["data"])
    assert delta("gateway_missing_entities_total", view="profile") == 1  # C999999 is not in the table


def test_openapi_describes_the_request_and_validates_examples(client: FlaskClient) -> None:
    api = client.get("/openapi.json").get_json()
    assert api["openapi"].startswith("3.1") and "/get_score" in api["paths"]
    schemas = api["components"]["schemas"]
    resolver_root = {"components": {"schemas": schemas}}
    request_schema = {**schemas["Request"], **resolver_root}
    jsonschema.validate(EXAMPLE, request_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"data": [{**EXAMPLE["data"][0], "loan_amount": 1}]}, request_schema)
    response = client.post("/get_score", json=EXAMPLE).get_json()
    jsonschema.validate(response, {**schemas["Success"], **resolver_root})
    assert client.get("/docs").status_code == 200
