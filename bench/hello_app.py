"""Baselines of the logic benchmark: a Flask hello-world answering POST /get_score.

``create_app`` reads the body and returns a constant JSON envelope, under exactly
the gunicorn settings the logic service uses, so the difference in CPU per
request is what the gateway's own work costs. ``create_grpc_app`` also makes one
Predict per request (a fixed 1-row request, with the logic service's gRPC client
and channel settings) to the graph named by ``GATEWAY_GRAPH_TARGETS``: the floor
of any logic tier that calls its graph over gRPC from Python.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import numpy as np
from flask import Flask, Response, request

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


def create_grpc_app() -> Flask:
    from gateway.logic.graph_client import GraphClient

    client = GraphClient(json.loads(os.environ["GATEWAY_GRAPH_TARGETS"]), "risk", "score", 5.0)
    version = max(client.version_states())
    inputs = {"features": np.zeros((1, int(os.environ.get("BENCH_WIDTH", "24"))), dtype=np.float32)}
    return create_app(lambda: client.predict(inputs, "probability", version))
