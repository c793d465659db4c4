"""The feature store on a real 3-master Redis Cluster: loads, reads, updates and clean-up across slots."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot

from gateway.featurestore import keys
from gateway.featurestore.commands import get_features
from gateway.featurestore.load import load_entity, update_entity
from gateway.featurestore.reader import FeatureReader
from tests.featurestore.support import small_spec, users, vectors_of

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


@pytest.fixture
def cluster(redis_cluster: str) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster)
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield client
    client.close()


def test_load_read_update_and_collect_on_a_cluster(cluster: RedisCluster) -> None:
    spec = small_spec()
    table = users(3000, age=20.0)
    first = load_entity(cluster, spec, "user", table)
    assert first.keys == 6000
    masters = {n.name for n in cluster.get_primaries()}
    per_node = {name: cluster.dbsize(target_nodes=cluster.get_node(node_name=name)) for name in masters}
    assert all(n > 1000 for n in per_node.values()), per_node  # data really is spread over the masters

    ids = ["u5", "u2999", "nobody", "u1234"]
    feats = FeatureReader(spec, cluster, cluster=True).fetch({"user": ids})
    assert feats.values("age") == [20.0, 20.0, -1.0, 20.0]
    np.testing.assert_array_equal(feats.vectors["emb"][[0, 1, 3]], vectors_of(table)[[5, 2999, 1234]])
    assert feats.missing == {"profile": 1, "emb": 1}

    changed = table.copy()
    changed.loc[1234, "tier"] = "platinum"
    s = update_entity(cluster, spec, "user", changed)
    assert (s.keys, s.unchanged) == (1, 2999)
    assert (
        get_features(cluster, spec, "user", ["u1234"], cluster=True)[0]["features"]["profile"]["tier"]
        == "platinum"
    )

    for age in (30.0, 40.0):
        last = load_entity(cluster, spec, "user", users(3000, age=age))
    assert last.removed == [1]
    leftovers = list(cluster.scan_iter(match=keys.snapshot_prefix("fs", "user", 1) + "*"))
    assert leftovers == []
    assert FeatureReader(spec, cluster, cluster=True).fetch({"user": ids}).values("age")[0] == 40.0


def test_an_entity_keys_share_one_slot(cluster: RedisCluster) -> None:
    load_entity(cluster, small_spec(), "user", users(10))
    found = list(cluster.scan_iter(match="gw:fs:user:1:*{user:u7}"))
    assert len(found) == 2  # profile and emb
    assert {key_slot(k) for k in found} == {key_slot(b"user:u7")}
