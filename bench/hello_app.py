"""Baselines of the logic benchmark: a Flask hello-world answering POST /get_score.

``create_app`` reads the body and returns a constant JSON envelope, under exactly
the gunicorn settings the logic service uses, so the difference in CPU per
request is what the gateway's own work costs. ``create_grpc_app`` also makes one
Predict per request (one row of zeros as wide as the newest version's input, with the
logic service's gRPC client and channel settings) to the graph named by
``GATEWAY_GRAPH_TARGETS``: the floor of any logic tier that calls its graph over gRPC from Python. ``create_floor_app`` adds
the feature read every scored request needs: one redis-py pipeline with the commands the
gateway sends for one ``risk`` record (the live snapshot's alias, then ``HMGET`` of the
customer's profile fields), replies read and dropped. That is the floor of any logic tier
that reads its features from Redis in one round trip and then calls its graph;
``create_read_app`` makes the read alone, the floor of one that scores in-process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from flask import Flask, Response, request

from bench import REPO

BODY = b'{"msg":"Successful!","code":200,"data":[{"score":0.5}]}'


def create_app(work: Callable[[], object] | None = None) -> Flask:
    app = Flask("hello")

    @app.post("/get_score")
    def get_score() -> Response:
        request.get_data()
        if work is not None:
            work()
        return Response(BODY, mimetype="application/json")

    @app.get("/health")
    def health() -> Response:
        return Response(b'{"health":"status","code":200}', mimetype="application/json")

    return app


def _predict() -> Callable[[], object]:
    """One Predict of a fixed 1-row request, as the logic service's gRPC client sends it."""
    from gateway.logic.graph_client import GraphClient

    client = GraphClient(json.loads(os.environ["GATEWAY_GRAPH_TARGETS"]), "risk", "score", 5.0)
    version = max(client.version_states())
    root = Path(os.environ.get("GATEWAY_MODELS_ROOT", REPO / "models"))
    manifest = json.loads((root / "risk" / str(version) / "manifest.json").read_text())
    inputs = {"features": np.zeros((1, manifest["graph_inputs"]["features"][1]), dtype=np.float32)}
    return lambda: client.predict(inputs, "probability", version)


def _feature_read() -> Callable[[], object]:
    """One round trip with the gateway's commands for the first record of ``examples/risk.json``
    (to ``GATEWAY_MODEL``'s features: ``risk``, or a model with the same request and views)."""
    import redis

    from gateway.featurestore import keys
    from gateway.spec import load_spec

    model = os.environ.get("GATEWAY_MODEL", "risk")
    spec = load_spec(Path(os.environ.get("GATEWAY_MODELS_ROOT", REPO / "models")) / model / "model.yaml")
    view = next(v for v in spec.feature_views if v.kind == "hash")
    customer = json.loads((REPO / "examples" / "risk.json").read_text())["data"][0]["customer_id"]
    client = redis.Redis.from_url(os.environ["GATEWAY_REDIS_URL"])
    alias = keys.alias_key(spec.name, view.entity)
    key = keys.data_key(spec.name, view.entity, int(client.get(alias) or 0), view.name, customer)
    if not client.exists(key):
        raise RuntimeError(f"{key} is not in Redis: load risk's demo features first")
    fields = list(view.fields)

    def read() -> object:
        pipe = client.pipeline(transaction=False)
        pipe.get(alias)
        pipe.hmget(key, fields)
        return pipe.execute()

    return read


def create_grpc_app() -> Flask:
    return create_app(_predict())


def create_read_app() -> Flask:
    """The feature read alone: the floor of a tier that scores in-process (``backend: sklearn``)."""
    return create_app(_feature_read())


def create_floor_app() -> Flask:
    read, predict = _feature_read(), _predict()

    def work() -> None:
        read()
        predict()

    return create_app(work)
