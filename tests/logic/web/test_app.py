"""The Flask app through its test client, wired to real Redis and a real graph-server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.logic.web.app import create_app
from gateway.settings import Settings
from tests.support import REPO

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app(built_models: Path, risk_graph: int, risk_features: Callable[[int], str]) -> Flask:
    url = risk_features(2)
    settings = Settings(
        model="risk",
        models_root=built_models,
        redis_url=url,
        graph_targets=[f"127.0.0.1:{risk_graph}"],
        max_body_bytes=4096,
    )
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


EXAMPLE = json.loads((REPO / "examples" / "risk.json").read_text())


def _envelope(resp: Any, status: int, error: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["code"] == status and body["error"] == error
    assert isinstance(body["msg"], str) and isinstance(body["details"], list)
    assert "Traceback" not in resp.get_data(as_text=True)
    return body  # type: ignore[no-any-return]


def test_scores_example(client: FlaskClient) -> None:
    resp = client.post("/get_score", json=EXAMPLE)
    assert resp.status_code == 200
    body = resp.get_json()
    assert [set(d) for d in body["data"]] == [{"score"}, {"score"}, {"score", "defaulted"}]
    assert body["data"][2]["defaulted"] == ["profile"]  # C999999 is not in the feature store
    assert all(0.0 < d["score"] < 1.0 for d in body["data"])
    assert "graph;dur=" in resp.headers["Server-Timing"]


def test_malformed_json(client: FlaskClient) -> None:
    resp = client.post("/get_score", data="{nope", content_type="application/json")
    _envelope(resp, 400, "malformed_json")


def test_wrong_content_type(client: FlaskClient) -> None:
    resp = client.post("/get_score", data=json.dumps(EXAMPLE), content_type="text/plain")
    body = _envelope(resp, 415, "unsupported_media_type")
    assert "text/plain" in body["msg"]


def test_body_too_large(client: FlaskClient) -> None:
    big = {"data": [EXAMPLE["data"][0]] * 100}
    _envelope(client.post("/get_score", json=big), 413, "payload_too_large")


def test_invalid_field(client: FlaskClient) -> None:
    bad = {"data": [{**EXAMPLE["data"][0], "loan_amount": -5}]}
    body = _envelope(client.post("/get_score", json=bad), 400, "invalid_field")
    assert body["details"] == [{"field": "data[0].loan_amount", "problem": "must be >= 100"}]


def test_unknown_version(client: FlaskClient) -> None:
    body = _envelope(client.post("/get_score", json={**EXAMPLE, "version": 99}), 404, "unknown_version")
    assert "99" in body["msg"]


def test_unknown_route_and_method(client: FlaskClient) -> None:
    _envelope(client.get("/nope"), 404, "not_found")
    _envelope(client.get("/get_score"), 405, "method_not_allowed")


def test_gunicorn_hooks_leave_an_app_that_is_not_the_logic_app_alone() -> None:
    """The benchmarks run their hello-world baselines under the same gunicorn config."""
    from types import SimpleNamespace

    from flask import Flask

    from gateway.logic.web import gunicorn_conf

    worker = SimpleNamespace(wsgi=Flask("hello"), notify=lambda: None, log=None)
    gunicorn_conf._wait_for_a_version(worker)  # returns at once; the logic app's state is not looked up
