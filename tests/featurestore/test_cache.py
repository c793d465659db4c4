"""Per-view feature tables and the worker cache: typed columns, and exactness across loads (real Redis)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import redis

from gateway.featurestore.cache import CachedTable, Stamp, ViewTable
from gateway.featurestore.load import load_entity, update_entity
from gateway.featurestore.reader import FeatureReader
from gateway.spec import ModelSpec, parse_spec
from gateway.transformer.columns import Column, infer
from gateway.transformer.stage import ColumnAssembler
from tests.featurestore.support import DIM, small_spec, users, vectors_of

DB = 6


def cached_spec(max_entities: int = 1000) -> ModelSpec:
    data = small_spec().model_dump()
    for view in data["feature_views"]:
        view["cache"] = {"max_entities": max_entities}
    return parse_spec(data)


def test_table_takes_rows_by_position_with_defaults_for_absent_entities() -> None:
    view = small_spec().view("profile")
    t = CachedTable(view, Stamp(1, 0), capacity=1)  # grows as rows arrive
    t.add(["a", "b"], [[b"1.5", b"7", b"gold"], [None, None, None]])
    t.add(["c", "a"], [[b"2.5", None, b"basic"], [b"9.0", b"9", b"x"]])  # "a" is kept as first read
    taken = t.take(["c", "a", "b"], [1, 0, 1, 2, 0])
    cols = taken.columns
    assert taken.vectors is None and taken.absent == 1
    assert cols["age"].dtype == np.float64 and cols["age"].tolist() == [1.5, 2.5, 1.5, -1.0, 2.5]
    assert cols["tier"].dtype == object and cols["tier"].tolist() == [
        "gold",
        "basic",
        "gold",
        "none",
        "basic",
    ]
    assert cols["visits"].tolist() == [7, 0, 7, 0, 0]


def test_assembled_feature_columns_equal_what_inference_makes_of_the_same_values() -> None:
    """The transform stage takes float and string feature arrays as inferred columns without looking
    at each value: that must be exactly what pandas-style inference makes of the decoded values."""
    spec = small_spec()
    view = spec.view("profile")
    assemble = ColumnAssembler(spec)
    raws = [[b"1e-3", b"1", b"a"], [b"nan", b"2", b"b"], [None, None, None], [b"-0.0", None, None]]
    for t in (ViewTable(view), CachedTable(view, Stamp(1, 0))):
        t.add(["w", "x", "y", "z"], raws)
        for rows in ([0, 1, 2, 3], [3, 3, 0]):
            taken = t.take(["w", "x", "y", "z"], rows)
            cols = assemble([{"uid": "u"}] * len(rows), False, taken.columns)
            for name in ("age", "tier"):
                expected = infer(taken.columns[name].tolist())
                assert cols[name].kind == expected.kind
                assert cols[name].values.dtype == expected.values.dtype
                np.testing.assert_array_equal(cols[name].values, expected.values)
            assert cols["visits"] == taken.columns["visits"].tolist()  # ints: inferred by the program


def test_vector_table_zeros_for_absent_or_mis_sized_values() -> None:
    view = small_spec().view("emb")
    v = np.arange(DIM, dtype="<f4")
    for t in (ViewTable(view), CachedTable(view, Stamp(1, 0), capacity=2)):
        t.add(["a", "b", "c"], [v.tobytes(), None, b"\x00\x01"])
        taken = t.take(["a", "b", "c"], [0, 1, 2, 0])
        vectors = taken.vectors
        assert taken.absent == 2 and vectors is not None and vectors.dtype == np.float32
        np.testing.assert_array_equal(vectors, [v, np.zeros(DIM), np.zeros(DIM), v])


@pytest.fixture
def client(redis_server: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_server.rsplit("/", 1)[0] + f"/{DB}")
    c.flushdb()
    yield c
    c.close()


def _reads(client: redis.Redis) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("eval", "mget", "hmget"))


@pytest.mark.integration
def test_cached_entities_are_read_once_per_snapshot_and_generation(client: redis.Redis) -> None:
    spec = cached_spec()
    table = users(20)
    load_entity(client, spec, "user", table)
    reader = FeatureReader(spec, client)
    ids = {"user": ["u1", "u2", "u1", "ghost"]}
    first = reader.fetch(ids)  # learns the snapshot, then reads under it
    client.config_resetstat()
    again = reader.fetch(ids)
    assert _reads(client) == 0  # alias and generation only: every entity, the absent one too, is held
    assert again.values("age") == first.values("age") == [30.0, 30.0, 30.0, -1.0]
    assert again.missing == {"profile": 1, "emb": 1}
    np.testing.assert_array_equal(again.vectors["emb"][:3], vectors_of(table)[[1, 2, 1]])

    # An incremental load rewrites keys of the live snapshot in place: the next request sees it.
    changed = table.copy()
    changed.loc[changed["id"] == "u2", "age"] = 55.0
    update_entity(client, spec, "user", changed)
    assert reader.fetch(ids).values("age") == [30.0, 55.0, 30.0, -1.0]

    # A full load writes a new snapshot and moves the alias: likewise.
    load_entity(client, spec, "user", users(20, age=41.0))
    assert reader.fetch(ids).values("age") == [41.0, 41.0, 41.0, -1.0]
    assert reader.fetch({"user": ["ghost", "u3"]}).values("age") == [-1.0, 41.0]


@pytest.mark.integration
def test_a_full_cache_starts_over_and_stays_exact(client: redis.Redis) -> None:
    spec = cached_spec(max_entities=5)
    table = users(30)
    load_entity(client, spec, "user", table)
    reader = FeatureReader(spec, client)
    for start in range(0, 30, 4):
        ids = [f"u{i}" for i in range(start, min(start + 4, 30))]
        feats = reader.fetch({"user": ids})
        np.testing.assert_array_equal(feats.vectors["emb"], vectors_of(table)[start : start + len(ids)])
        assert feats.values("visits") == [i % 50 for i in range(start, start + len(ids))]
    assert all(n <= 8 for n in reader.cache.sizes().values())


@pytest.mark.integration
def test_uncached_views_read_every_request(client: redis.Redis) -> None:
    spec = small_spec()
    load_entity(client, spec, "user", users(5))
    reader = FeatureReader(spec, client)
    reader.fetch({"user": ["u1", "u2"]})
    client.config_resetstat()
    reader.fetch({"user": ["u1", "u2"]})
    stats: dict[str, Any] = client.info("commandstats")
    assert (stats["cmdstat_eval"]["calls"], stats["cmdstat_mget"]["calls"]) == (1, 1)  # one per view


def test_defaults_take_their_field_dtype() -> None:
    spec = small_spec()
    data = spec.model_dump()
    data["feature_views"][0]["fields"]["age"]["default"] = 0
    data["feature_views"][0]["fields"]["visits"]["default"] = 3.0
    coerced = parse_spec(data).view("profile").fields
    assert type(coerced["age"].default) is float and type(coerced["visits"].default) is int
    data["feature_views"][0]["fields"]["age"]["default"] = "none"
    with pytest.raises(ValueError, match="must be a number"):
        parse_spec(data)
    data["feature_views"][0]["fields"]["age"]["default"] = 0.0
    data["feature_views"][0]["fields"]["tier"]["default"] = 1
    with pytest.raises(ValueError, match="must be a string"):
        parse_spec(data)


def test_ranking_context_is_inferred_once_and_broadcast() -> None:
    from gateway.transformer.stage import broadcast

    for value in (20, 2.5, "mobile", None, True, float("nan")):
        col = broadcast(value, 3)
        assert isinstance(col, Column)
        expected = infer([value] * 3)
        assert col.kind == expected.kind
        np.testing.assert_array_equal(col.values, expected.values)
    assert broadcast(2**70, 2) == [2**70, 2**70]  # beyond int64: left to the reference path


@pytest.mark.integration
@pytest.mark.parametrize("max_entities", [1000, 64])  # 64: tables also start over while threads read
def test_threads_sharing_a_cache_never_read_a_value_older_than_a_finished_load(
    client: redis.Redis, max_entities: int
) -> None:
    spec = cached_spec(max_entities)
    load_entity(client, spec, "user", users(100, age=1.0))
    reader = FeatureReader(spec, client)
    finished = [1.0]  # ages of loads that have returned, in order
    errors: list[str] = []
    stop = threading.Event()

    def read(seed: int) -> None:
        rng = np.random.default_rng(seed)
        while not stop.is_set():
            floor = finished[-1]  # every load that returned before this request started
            ids = [f"u{i}" for i in rng.choice(100, size=10, replace=False)]
            ages = set(reader.fetch({"user": ids}).values("age"))
            if min(ages) < floor:
                errors.append(f"read {sorted(ages)} after the load of {floor} finished")

    threads = [threading.Thread(target=read, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    try:
        for age in (2.0, 3.0, 4.0):
            update_entity(client, spec, "user", users(100, age=age))  # in place, then generation + 1
            finished.append(age)
        load_entity(client, spec, "user", users(100, age=5.0))  # a new snapshot
        finished.append(5.0)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    assert set(reader.fetch({"user": [f"u{i}" for i in range(100)]}).values("age")) == {5.0}
