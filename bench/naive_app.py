"""The naive baseline of ``make bench``: the logic tier as the common tutorial writes it.

Flask; the request's records into ``pd.DataFrame(request_json["data"])``; the live snapshot's
id, then one Redis ``HGETALL`` per entity; the pickled scikit-learn transformer's
``transform``; ``tf.make_tensor_proto`` and tensorflow-serving-api's
``PredictionServiceStub`` for the graph. No validation beyond what pandas and the
transformer do, no fallbacks, no metrics. It serves a records-form model (``risk``) from
the same model directory, Redis and graph service as the project and answers the same
envelope and scores (``tests/acceptance/test_bench.py`` checks), so the comparison is
between two ways of doing the same work.

Run under the project's gunicorn settings (``bench/compare.py`` does)::

    gunicorn -c python:gateway.logic.web.gunicorn_conf 'bench.naive_app:create_app()'

with ``GATEWAY_MODEL``, ``GATEWAY_MODELS_ROOT``, ``GATEWAY_REDIS_URL`` and
``GATEWAY_GRAPH_TARGETS`` (a JSON list; the first address is used) set as for the project.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import redis
import yaml
from flask import Flask, jsonify, request


def create_app() -> Flask:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    model = os.environ.get("GATEWAY_MODEL", "risk")
    base = Path(os.environ.get("GATEWAY_MODELS_ROOT", "models")) / model
    spec = yaml.safe_load((base / "model.yaml").read_text())
    version = max(int(p.name) for p in base.iterdir() if p.name.isdigit())
    with open(base / str(version) / spec["transformer"]["file"], "rb") as f:
        transformer = pickle.load(f)
    r = redis.Redis.from_url(os.environ.get("GATEWAY_REDIS_URL", "redis://127.0.0.1:6379/0"))
    target = json.loads(os.environ["GATEWAY_GRAPH_TARGETS"])[0]
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
    view = spec["feature_views"][0]
    entity_field = spec["entities"][view["entity"]]["field"]
    graph = spec["graph"]
    input_name = next(iter(graph["inputs"]))

    app = Flask("naive")

    @app.post("/get_score")
    def get_score() -> Any:
        request_json = request.get_json()
        df = pd.DataFrame(request_json["data"])
        for field in spec["request"]["fields"]:
            if "default" in field:
                if field["name"] not in df:
                    df[field["name"]] = field["default"]
                df[field["name"]] = df[field["name"]].fillna(field["default"])

        snapshot = r.get(f"gw:{model}:{view['entity']}:live").decode()
        rows = []
        for entity_id in df[entity_field]:
            key = f"gw:{model}:{view['entity']}:{snapshot}:{view['name']}:{{{view['entity']}:{entity_id}}}"
            stored = {k.decode(): v.decode() for k, v in r.hgetall(key).items()}
            row = {}
            for name, f in view["fields"].items():
                value = stored.get(name, f["default"])
                row[name] = float(value) if f["dtype"] == "float" else value
            rows.append(row)
        features = pd.concat([df.reset_index(drop=True), pd.DataFrame(rows)], axis=1)

        x = transformer.transform(features[spec["transformer"]["columns"]])
        req = predict_pb2.PredictRequest()
        req.model_spec.name = graph["model_name"]
        req.model_spec.signature_name = graph["signature"]
        req.model_spec.version.value = version
        req.inputs[input_name].CopyFrom(tf.make_tensor_proto(np.asarray(x, dtype=np.float32)))
        result = stub.Predict(req, timeout=graph.get("deadline_ms", 1000) / 1000)
        scores = tf.make_ndarray(result.outputs[graph["output"]]).reshape(-1)
        return jsonify(
            {
                "msg": "Successful!",
                "code": 200,
                "data": [{"score": float(s)} for s in scores],
                "model": {"name": model, "version": version},
            }
        )

    @app.get("/health")
    def health() -> Any:
        return jsonify({"health": "status", "code": 200})

    return app
