"""The ranking model end to end: features loaded by the CLI's loader, real Redis, real graph-server.

Scores must equal the offline result: the published transformer and SavedModel
run in this process on features taken from the demo tables (not from Redis).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from gateway import artifacts
from gateway.featurestore.commands import load_file
from gateway.logic.web.app import create_app
from gateway.settings import Settings
from gateway.spec import ModelSpec, load_spec
from tests.support import REPO

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def spec(built_models: Path) -> ModelSpec:
    return load_spec(built_models / "ctr" / "model.yaml")


@pytest.fixture(scope="module")
def app(built_models: Path, ctr_graph: int, redis_server: str, spec: ModelSpec) -> Flask:
    url = redis_server.rsplit("/", 1)[0] + "/4"
    client = redis.Redis.from_url(url)
    client.flushdb()
    for entity in ("user", "item"):
        load_file(client, spec, built_models / "ctr" / "demo" / f"{entity}.parquet", quiet=True)
    settings = Settings(
        model="ctr", models_root=built_models, redis_url=url, graph_targets=[f"127.0.0.1:{ctr_graph}"]
    )
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def offline_scores(models_root: Path, spec: ModelSpec, body: dict[str, Any]) -> dict[str, float]:
    """item id -> score, computed from the demo tables, the pickled transformer and the SavedModel."""
    import tensorflow as tf

    vdir = models_root / "ctr" / "1"
    transformer = artifacts.load_verified_pickle(vdir, "transformer.pkl", artifacts.read_manifest(vdir))
    users = pd.read_parquet(models_root / "ctr/demo/user.parquet").set_index("id")
    items = pd.read_parquet(models_root / "ctr/demo/item.parquet").set_index("id")
    context = {f.name: body.get("context", {}).get(f.name, f.default) for f in spec.request.fields}
    rows, vectors = [], []
    for item in body["item_ids"]:
        row = dict(context)
        for view, table, key in (("user_profile", users, body["uid"]), ("item_attrs", items, item)):
            for name, field in spec.view(view).fields.items():
                row[name] = table.loc[key, name] if key in table.index else field.default
        rows.append(row)
        vectors.append(items.loc[item, "item_embedding"] if item in items.index else np.zeros(32, np.float32))
    x = np.asarray(transformer.transform(pd.DataFrame(rows)[spec.transformer.columns]), np.float32)
    fn = tf.saved_model.load(str(vdir)).signatures["serving_default"]
    out = fn(features=tf.constant(x), item_embedding=tf.constant(np.stack(vectors).astype(np.float32)))
    return dict(zip(body["item_ids"], out["probability"].numpy().reshape(-1).tolist(), strict=True))


def test_example_request_is_ranked_like_offline(
    client: FlaskClient, built_models: Path, spec: ModelSpec
) -> None:
    body = json.loads((REPO / "examples" / "ctr.json").read_text())
    r = client.post("/get_score", json=body)
    assert r.status_code == 200, r.get_data(as_text=True)
    out = r.get_json()
    assert (
        out["msg"] == "Successful!" and out["code"] == 200 and out["model"] == {"name": "ctr", "version": 1}
    )
    data = out["data"]
    assert len(data) == body["top_k"]
    expected = offline_scores(built_models, spec, body)
    best = sorted(expected, key=expected.__getitem__, reverse=True)[: body["top_k"]]
    assert [d["item_id"] for d in data] == best
    np.testing.assert_allclose([d["score"] for d in data], [expected[i] for i in best], atol=1e-5, rtol=0)


def test_unknown_user_and_items_get_declared_defaults(
    client: FlaskClient, built_models: Path, spec: ModelSpec
) -> None:
    body = {"uid": "U999999", "item_ids": ["I00001", "NOPE1", "I00002", "NOPE2"], "context": {"hour": 3}}
    r = client.post("/get_score", json=body)
    assert r.status_code == 200, r.get_data(as_text=True)
    data = r.get_json()["data"]
    assert sorted(d["item_id"] for d in data) == sorted(body["item_ids"])  # no top_k: every item, ranked
    scores = [d["score"] for d in data]
    assert scores == sorted(scores, reverse=True)
    expected = offline_scores(built_models, spec, body)
    np.testing.assert_allclose(scores, [expected[d["item_id"]] for d in data], atol=1e-5, rtol=0)


def test_scores_depend_on_the_user(client: FlaskClient) -> None:
    items = [f"I{i:05d}" for i in range(0, 2000, 40)]
    rankings = []
    for uid in ("U000001", "U000002", "U000003"):
        r = client.post("/get_score", json={"uid": uid, "item_ids": items, "top_k": 10})
        assert r.status_code == 200
        rankings.append([d["item_id"] for d in r.get_json()["data"]])
    assert len({tuple(x) for x in rankings}) == 3  # personalised, not a popularity list


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"uid": "U1", "item_ids": ["I1"], "context": {"hour": 25}}, "context.hour"),
        ({"uid": "U1", "item_ids": ["I1"], "context": {"weather": "rain"}}, "context.weather"),
        ({"uid": "U1", "item_ids": []}, "item_ids"),
        ({"uid": "U1", "item_ids": ["I1"] * 501}, "item_ids"),
        ({"item_ids": ["I1"]}, "uid"),
        ({"uid": "U1", "item_ids": ["I1"], "top_k": 0}, "top_k"),
    ],
)
def test_bad_ranking_requests_name_the_field(client: FlaskClient, body: dict[str, Any], field: str) -> None:
    r = client.post("/get_score", json=body)
    assert r.status_code == 400
    assert r.get_json()["details"][0]["field"] == field


def _cache_count(client: FlaskClient, view: str, source: str) -> float:
    prefix = f'gateway_feature_cache_entities_total{{model="ctr",source="{source}",view="{view}"}} '
    text = client.get("/metrics").get_data(as_text=True)
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def test_item_views_are_cached_per_worker_and_counted(client: FlaskClient) -> None:
    items = [f"I{i:05d}" for i in range(7, 9000, 301)]

    def counts() -> tuple[float, float]:
        return _cache_count(client, "item_attrs", "worker"), _cache_count(client, "item_attrs", "redis")

    held0, read0 = counts()
    first = client.post("/get_score", json={"uid": "U000005", "item_ids": items})
    held1, read1 = counts()
    again = client.post("/get_score", json={"uid": "U000005", "item_ids": items})
    held2, read2 = counts()
    assert first.status_code == again.status_code == 200
    assert first.get_json()["data"] == again.get_json()["data"]
    assert (held1 - held0) + (read1 - read0) == len(items) and read1 > read0  # new items came from Redis
    assert (held2 - held1, read2 - read1) == (len(items), 0)  # then every one from the worker
