"""Feature reads and whole requests against a real 3-master Redis Cluster."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from gateway.featurestore import keys
from gateway.featurestore.load import load_entity, read_table
from gateway.featurestore.reader import FeatureReader
from gateway.logic.web.app import create_app
from gateway.settings import Settings
from gateway.spec import load_spec
from tests.support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


@pytest.fixture(scope="module")
def cluster_with_risk(redis_cluster: str, built_models: Path) -> str:
    client = RedisCluster.from_url(redis_cluster)
    client.flushall()
    spec = load_spec(built_models / "risk" / "model.yaml")
    load_entity(client, spec, "customer", read_table(built_models / "risk" / "demo" / "customer.parquet"))
    client.close()
    return redis_cluster


def test_data_spans_all_masters(cluster_with_risk: str) -> None:
    client = RedisCluster.from_url(cluster_with_risk)
    sizes = [client.dbsize(target_nodes=node) for node in client.get_primaries()]
    assert len(sizes) == 3 and all(n > 100 for n in sizes), sizes


def test_cluster_reads_equal_single_server_reads(
    cluster_with_risk: str, built_models: Path, risk_features: Callable[[int], str]
) -> None:
    spec = load_spec(built_models / "risk" / "model.yaml")
    ids = {"customer": ["C000001", "C004999", "C000001", "nobody", "C002500"]}
    on_cluster = FeatureReader(spec, RedisCluster.from_url(cluster_with_risk), cluster=True).fetch(ids)
    single = FeatureReader(spec, redis.Redis.from_url(risk_features(4))).fetch(ids)
    assert on_cluster.columns.keys() == single.columns.keys()
    assert all(on_cluster.values(c) == single.values(c) for c in single.columns)
    assert on_cluster.missing == single.missing == {"profile": 1}


def test_scores_on_cluster_equal_scores_on_single_server(
    cluster_with_risk: str, built_models: Path, risk_graph: int, risk_features: Callable[[int], str]
) -> None:
    body = json.loads((REPO / "examples" / "risk.json").read_text())
    common = {"model": "risk", "models_root": built_models, "graph_targets": [f"127.0.0.1:{risk_graph}"]}
    cluster_app = create_app(Settings(redis_url=cluster_with_risk, redis_cluster=True, **common))
    single_app = create_app(Settings(redis_url=risk_features(4), **common))
    a = cluster_app.test_client().post("/get_score", json=body)
    b = single_app.test_client().post("/get_score", json=body)
    assert a.status_code == b.status_code == 200
    assert a.get_json()["data"] == b.get_json()["data"]
    assert cluster_app.test_client().get("/ready").status_code == 200


def test_an_entitys_keys_share_a_slot() -> None:
    a = keys.data_key("ctr", "item", 3, "item_features", "i42")
    b = keys.data_key("ctr", "item", 3, "item_emb", "i42")
    assert redis.cluster.key_slot(a.encode()) == redis.cluster.key_slot(b.encode())
