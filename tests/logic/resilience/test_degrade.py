"""Failing soft, in-process: the tiny model whose graph fails on demand (tests/tiny.py).

The version's light model (``light_model.json``, fitted by ``make_tiny`` like packaging
fits it) answers when the graph cannot; answers say so; client errors never fall back.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pandas as pd
import pytest
from flask.testing import FlaskClient

from gateway import errors
from gateway.artifacts import safe_unpickle
from gateway.logic.resilience.admission import SHED
from gateway.logic.web.state import app_state
from tests.tiny import EXAMPLE, ROOT, TinyPredictor, tiny_app, tiny_root

FALLBACK = {"chain": ["light_model", "default"], "default_score": 0.5}
CIRCUIT = {"failures": 3, "open_s": 0.2}


def client_for(tmp: Path, predictor: TinyPredictor, **blocks: Any) -> FlaskClient:
    root = tiny_root(tmp, **blocks)
    app = tiny_app(predictor, models_root=root, metrics_flush_ms=0)
    predictor.calls = 0
    return app.test_client()


def light_scores(records: list[dict[str, Any]]) -> np.ndarray[Any, Any]:
    """The offline fallback: the pickled transformer, the light model's coefficients, the spec's sigmoid."""
    fitted = safe_unpickle(io.BytesIO((ROOT / "tiny/1/transformer.pkl").read_bytes()))
    light = json.loads((ROOT / "tiny/1/light_model.json").read_text())
    frame = pd.DataFrame([{c: r[c] for c in ("amount", "term", "purpose")} for r in records])
    x = np.asarray(fitted.transform(frame), dtype=np.float32).astype(np.float64)
    raw = x @ np.asarray(light["coef"]) + light["intercept"]
    return np.asarray(1 / (1 + np.exp(-raw)))


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (grpc.StatusCode.UNAVAILABLE, "graph_unavailable"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "graph_deadline"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "overload"),
        (grpc.StatusCode.INTERNAL, "graph_unavailable"),
    ],
)
def test_graph_failures_are_answered_by_the_light_model(
    tmp_path: Path, code: grpc.StatusCode, reason: str
) -> None:
    predictor = TinyPredictor()
    client = client_for(tmp_path, predictor, fallback=FALLBACK)
    predictor.fail = errors.from_grpc(code, "graph trouble")
    r = client.post("/get_score", json=EXAMPLE)
    body = r.get_json()
    assert r.status_code == 200 and body["degraded"] is True
    assert (body["reason"], body["source"]) == (reason, "light_model") and "graph trouble" in body["detail"]
    np.testing.assert_allclose([d["score"] for d in body["data"]], light_scores(EXAMPLE["data"]), atol=1e-6)
    text = client.get("/metrics").get_data(as_text=True)
    assert f'gateway_degraded_total{{model="tiny",reason="{reason}",source="light_model"}} 1.0' in text


def test_a_normal_answer_carries_no_degradation(tmp_path: Path) -> None:
    body = (
        client_for(tmp_path, TinyPredictor(), fallback=FALLBACK).post("/get_score", json=EXAMPLE).get_json()
    )
    assert not {"degraded", "reason", "source"} & set(body)


def test_client_errors_never_fall_back(tmp_path: Path) -> None:
    predictor = TinyPredictor()
    client = client_for(tmp_path, predictor, fallback=FALLBACK)
    predictor.fail = errors.from_grpc(grpc.StatusCode.INVALID_ARGUMENT, "bad tensor")
    r = client.post("/get_score", json=EXAMPLE)
    assert r.status_code == 400 and r.get_json()["error"] == "graph_invalid_argument"
    assert client.post("/get_score", json={"data": []}).status_code == 400


def test_the_circuit_opens_then_probes_then_closes(tmp_path: Path) -> None:
    import time

    predictor = TinyPredictor()
    client = client_for(tmp_path, predictor, fallback=FALLBACK, circuit=CIRCUIT)
    predictor.fail = errors.from_grpc(grpc.StatusCode.UNAVAILABLE, "down")
    reasons = [client.post("/get_score", json=EXAMPLE).get_json()["reason"] for _ in range(5)]
    assert reasons == ["graph_unavailable"] * 3 + ["circuit_open"] * 2
    assert predictor.calls == 3  # open: the graph is not even asked
    ready = client.get("/ready").get_json()
    assert ready["checks"]["circuit"] == "open" and "circuit_open" in ready["checks"]["degraded"]
    time.sleep(0.25)
    predictor.fail = None
    body = client.post("/get_score", json=EXAMPLE).get_json()  # the probe, which succeeds
    assert "degraded" not in body and app_state(client.application).scorer.breaker.state.name == "CLOSED"  # type: ignore[union-attr]
    assert client.get("/ready").get_json()["checks"]["full"] is True
    assert 'gateway_circuit_opened_total{model="tiny"} 1.0' in client.get("/metrics").get_data(as_text=True)


def test_without_a_version_the_default_answers(tmp_path: Path) -> None:
    predictor = TinyPredictor()
    predictor.graph = {}  # the graph serves nothing: no version becomes available
    client = client_for(tmp_path, predictor, fallback=FALLBACK)
    body = client.post("/get_score", json=EXAMPLE).get_json()
    assert (body["reason"], body["source"]) == ("graph_unavailable", "default")
    assert [d["score"] for d in body["data"]] == pytest.approx(
        [1 / (1 + np.exp(-0.5))] * 2
    )  # through the sigmoid
    assert client.get("/ready").status_code == 200  # answers (degraded): stays in rotation


def test_without_a_fallback_the_failure_is_the_answer(tmp_path: Path) -> None:
    predictor = TinyPredictor()
    client = client_for(tmp_path, predictor)
    predictor.fail = errors.from_grpc(grpc.StatusCode.UNAVAILABLE, "down")
    r = client.post("/get_score", json=EXAMPLE)
    assert (
        r.status_code == 503
        and r.get_json()["error"] == "graph_unavailable"
        and r.headers["Retry-After"] == "1"
    )


@pytest.mark.parametrize(
    ("shed", "status", "error"), [("429", 429, "overloaded"), ("503", 503, "overloaded")]
)
def test_shed_requests_get_the_status_with_retry_after(
    tmp_path: Path, shed: str, status: int, error: str
) -> None:
    predictor = TinyPredictor()
    client = client_for(tmp_path, predictor, overload={"max_in_flight": 2, "shed": shed, "retry_after_s": 3})
    SHED.active = True  # what the gunicorn worker sets for a request beyond the budget
    try:
        r = client.post("/get_score", json=EXAMPLE)
    finally:
        SHED.active = False
    assert (r.status_code, r.get_json()["error"]) == (status, error) and r.headers["Retry-After"] == "3"
    assert predictor.calls == 0


def test_shed_requests_get_the_fallback_when_the_spec_says_so(tmp_path: Path) -> None:
    predictor = TinyPredictor()
    client = client_for(
        tmp_path, predictor, fallback=FALLBACK, overload={"max_in_flight": 2, "shed": "fallback"}
    )
    scorer = app_state(client.application).scorer
    for _ in range(2):
        assert scorer.admission.enter()  # two requests in flight already
    body = client.post("/get_score", json=EXAMPLE).get_json()
    assert (body["reason"], body["source"]) == ("overload", "light_model") and predictor.calls == 0
    np.testing.assert_allclose([d["score"] for d in body["data"]], light_scores(EXAMPLE["data"]), atol=1e-6)
