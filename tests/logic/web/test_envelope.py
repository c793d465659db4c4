"""The logic app's envelope, validation, error mapping and OpenAPI: the tiny model, in-process.

No servers, no training, no TensorFlow: ``tests/tiny.py`` serves the checked-in tiny
version with an in-process predictor through the real ``create_app``.
"""

from __future__ import annotations

import io
import json
from typing import Any

import grpc
import jsonschema
import numpy as np
import pandas as pd
import pytest
from flask.testing import FlaskClient

from gateway import errors
from gateway.artifacts import safe_unpickle
from gateway.logic.web.state import app_state
from gateway.wire.status import GRPC_TO_HTTP
from tests.tiny import EXAMPLE, ROOT, TinyPredictor, expected_scores, tiny_app


@pytest.fixture
def predictor() -> TinyPredictor:
    return TinyPredictor()


@pytest.fixture
def client(predictor: TinyPredictor) -> FlaskClient:
    app = tiny_app(predictor, max_body_bytes=2048)
    predictor.calls = 0  # the warm-up requests are not the test's
    return app.test_client()


def envelope(resp: Any, status: int, error: str) -> dict[str, Any]:
    text = resp.get_data(as_text=True)
    assert resp.status_code == status, text
    body = resp.get_json()
    assert body["code"] == status and body["error"] == error, body
    assert isinstance(body["msg"], str) and isinstance(body["details"], list)
    assert "Traceback" not in text and 'File "' not in text
    return body  # type: ignore[no-any-return]


def reference(records: list[dict[str, Any]]) -> np.ndarray[Any, Any]:
    """Scores from the pickled transformer and pandas: what the compiled path must reproduce."""
    fitted = safe_unpickle(io.BytesIO((ROOT / "tiny/1/transformer.pkl").read_bytes()))
    frame = pd.DataFrame([{c: r[c] for c in ("amount", "term", "purpose")} for r in records])
    return expected_scores(np.asarray(fitted.transform(frame), dtype=np.float32).astype(np.float64))


def test_scores_in_the_success_envelope(client: FlaskClient) -> None:
    resp = client.post("/get_score", json=EXAMPLE)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["msg"] == "Successful!" and body["code"] == 200
    assert body["model"] == {"name": "tiny", "version": 1}
    scores = [d["score"] for d in body["data"]]
    np.testing.assert_allclose(scores, reference(EXAMPLE["data"]), rtol=0, atol=1e-6)
    assert "degraded" not in body
    assert "transform;dur=" in resp.headers["Server-Timing"]
    assert len(resp.headers["X-Request-ID"]) == 32


def test_a_sane_request_id_is_kept(client: FlaskClient) -> None:
    resp = client.post("/get_score", json=EXAMPLE, headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"
    resp = client.post("/get_score", json=EXAMPLE, headers={"X-Request-ID": "bad id <script>"})
    assert len(resp.headers["X-Request-ID"]) == 32  # replaced, not echoed


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({"data": [{**EXAMPLE["data"][0], "amount": 0.5}]}, "data[0].amount", "must be >= 1"),
        ({"data": [{**EXAMPLE["data"][0], "term": 2.5}]}, "data[0].term", "must be an integer, got float"),
        ({"data": [{**EXAMPLE["data"][0], "purpose": "boat"}]}, "data[0].purpose", "must be one of"),
        ({"data": [{**EXAMPLE["data"][0], "urgent": "yes"}]}, "data[0].urgent", "must be true or false"),
        (
            {"data": [{**EXAMPLE["data"][0], "colour": "red"}]},
            "data[0].colour",
            "is not a field of this model",
        ),
        ({"data": [{"customer_id": "c1", "term": 3, "purpose": "car"}]}, "data[0].amount", "is required"),
        ({"data": []}, "data", "must contain at least one record"),
        ({"data": [EXAMPLE["data"][0]] * 11}, "data", "at most 10 allowed"),
        ({"records": []}, "records", "unknown key in body"),
        ({**EXAMPLE, "version": 1, "label": "stable"}, "version", "either version or label"),
        ({**EXAMPLE, "version": 0}, "version", "must be a positive integer"),
        ([1, 2], "body", "must be a JSON object"),
    ],
)
def test_bad_input_gets_a_400_naming_the_field(
    client: FlaskClient, predictor: TinyPredictor, body: Any, field: str, problem: str
) -> None:
    got = envelope(client.post("/get_score", json=body), 400, "invalid_field")
    assert got["details"][0]["field"] == field and problem in got["details"][0]["problem"]
    assert predictor.calls == 0  # nothing reached the model


def test_transport_errors(client: FlaskClient) -> None:
    envelope(client.post("/get_score", data="{nope", content_type="application/json"), 400, "malformed_json")
    body = envelope(
        client.post("/get_score", data="{}", content_type="text/plain"), 415, "unsupported_media_type"
    )
    assert "text/plain" in body["msg"]
    big = json.dumps({"data": [EXAMPLE["data"][0]] * 30})
    envelope(client.post("/get_score", data=big, content_type="application/json"), 413, "payload_too_large")
    envelope(client.get("/nope"), 404, "not_found")
    envelope(client.get("/get_score"), 405, "method_not_allowed")


def test_unknown_version_is_a_404(client: FlaskClient) -> None:
    body = envelope(client.post("/get_score", json={**EXAMPLE, "version": 7}), 404, "unknown_version")
    assert "7" in body["msg"]


@pytest.mark.parametrize("code", [c for c in GRPC_TO_HTTP if c != grpc.StatusCode.OK], ids=lambda c: c.name)
def test_graph_failures_map_with_tf_servings_table(
    client: FlaskClient, predictor: TinyPredictor, code: grpc.StatusCode
) -> None:
    predictor.fail = errors.from_grpc(code, "graph said no")
    body = envelope(client.post("/get_score", json=EXAMPLE), GRPC_TO_HTTP[code], f"graph_{code.name.lower()}")
    assert "graph said no" in body["msg"]


def test_an_unexpected_exception_is_a_500_without_a_trace(
    client: FlaskClient, predictor: TinyPredictor, caplog: pytest.LogCaptureFixture
) -> None:
    predictor.fail = RuntimeError("secret internals")  # type: ignore[assignment]
    body = envelope(client.post("/get_score", json=EXAMPLE), 500, "internal")
    assert "secret" not in body["msg"]
    assert "unhandled error" in caplog.text  # logged for operators, with the trace


def test_health_and_readiness(client: FlaskClient, predictor: TinyPredictor) -> None:
    assert client.get("/health").get_json() == {"health": "status", "code": 200}
    ready = client.get("/ready")
    checks = ready.get_json()["checks"]
    assert ready.status_code == 200 and checks["versions"]["1"]["transformer_source"] == "artifact"
    assert checks["default_version"] == 1
    predictor.graph = {1: "UNLOADING"}  # the graph stopped serving it: the next poll notices
    app_state(client.application).scorer.versions.poll()
    body = envelope(client.get("/ready"), 503, "not_ready")
    assert any("no version is available" in d and "graph reports it UNLOADING" in d for d in body["details"])
    assert client.get("/health").status_code == 200  # not ready is still alive


def test_openapi_describes_the_model_and_its_examples(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0" and "/get_score" in doc["paths"]
    schemas = doc["components"]["schemas"]
    resolver = {"components": {"schemas": schemas}}
    request = {**schemas["Request"], **resolver}
    jsonschema.validate(EXAMPLE, request)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"data": [{**EXAMPLE["data"][0], "purpose": "boat"}]}, request)
    ok = client.post("/get_score", json=EXAMPLE).get_json()
    jsonschema.validate(ok, {**schemas["Success"], **resolver})
    bad = client.post("/get_score", json={"data": []}).get_json()
    jsonschema.validate(bad, {**schemas["Error"], **resolver})
    assert "text/html" in client.get("/docs").content_type


def test_metrics_count_answers(client: FlaskClient) -> None:
    client.post("/get_score", json=EXAMPLE)
    client.post("/get_score", json={"data": []})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'gateway_requests_total{endpoint="logic.get_score",model="tiny",status="200",version="1"}' in text
    assert 'status="400"' in text
