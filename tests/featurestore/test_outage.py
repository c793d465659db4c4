"""The feature store failing for real: a redis-server stopped, frozen, emptied; each view's policy decides."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import redis

from gateway.errors import FeatureStoreError
from gateway.featurestore.load import load_entity
from gateway.featurestore.reader import FeatureReader, connect
from gateway.procs import Proc, free_port, start_redis
from gateway.settings import Settings
from gateway.spec import ModelSpec, parse_spec
from tests.featurestore.support import small_spec, users

pytestmark = pytest.mark.integration


def spec_with(policy: str) -> ModelSpec:
    data = small_spec().model_dump()
    for view in data["feature_views"]:
        view["on_unavailable"] = policy
    return parse_spec(data)


@pytest.fixture
def store(tmp_path: Path) -> tuple[Proc, int]:
    proc, port = start_redis(tmp_path)
    load_entity(redis.Redis(port=port), small_spec(), "user", users(10, age=33.0))
    yield proc, port
    proc.stop()


def reader(policy: str, port: int) -> FeatureReader:
    client = connect(Settings(redis_url=f"redis://127.0.0.1:{port}/0", redis_timeout_ms=200))
    return FeatureReader(spec_with(policy), client)


def test_an_unreachable_store_gives_defaults_where_the_policy_allows(store: tuple[Proc, int]) -> None:
    proc, port = store
    r = reader("defaults", port)
    assert r.fetch({"user": ["u1"]}).values("age") == [33.0]
    proc.stop()
    feats = r.fetch({"user": ["u1", "u2"]})
    assert feats.unavailable and "ConnectionError" in feats.unavailable
    assert feats.values("age") == [-1.0, -1.0] and feats.missing == {"profile": 2, "emb": 2}
    assert feats.defaulted["profile"].tolist() == [True, True]


def test_an_unreachable_store_is_a_503_where_the_policy_says_so(store: tuple[Proc, int]) -> None:
    proc, port = store
    r = reader("error", port)
    proc.stop()
    with pytest.raises(FeatureStoreError, match="ConnectionError"):
        r.fetch({"user": ["u1"]})
    assert r.problems() and "unreachable" in r.problems()[0]


def test_a_frozen_store_is_waited_on_once_then_backed_off(store: tuple[Proc, int]) -> None:
    proc, port = store
    r = reader("defaults", port)
    r.fetch({"user": ["u1"]})
    proc.signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        assert "Timeout" in r.fetch({"user": ["u1"]}).unavailable  # waits for the socket timeout (0.2 s) once
        first = time.monotonic() - t0
        t0 = time.monotonic()
        for _ in range(20):
            assert r.fetch({"user": ["u1"]}).unavailable  # backing off: Redis is not asked
        assert first >= 0.15 and time.monotonic() - t0 < 0.1
    finally:
        proc.signal(signal.SIGCONT)
    deadline = time.monotonic() + 5
    while r.fetch({"user": ["u1"]}).unavailable and time.monotonic() < deadline:
        time.sleep(0.05)
    assert r.fetch({"user": ["u1"]}).values("age") == [33.0]  # recovered without a restart


def test_a_restarted_store_is_read_again(tmp_path: Path) -> None:
    port = free_port()
    proc, _ = start_redis(tmp_path, port)
    load_entity(redis.Redis(port=port), small_spec(), "user", users(3, age=40.0))
    r = reader("defaults", port)
    assert r.fetch({"user": ["u0"]}).values("age") == [40.0]
    proc.stop()
    assert r.fetch({"user": ["u0"]}).unavailable
    proc, _ = start_redis(tmp_path, port)
    try:
        load_entity(redis.Redis(port=port), small_spec(), "user", users(3, age=41.0))
        deadline = time.monotonic() + 5
        while r.fetch({"user": ["u0"]}).unavailable and time.monotonic() < deadline:
            time.sleep(0.05)
        assert r.fetch({"user": ["u0"]}).values("age") == [41.0]
    finally:
        proc.stop()


def test_no_live_snapshot_is_not_data(store: tuple[Proc, int]) -> None:
    _, port = store
    redis.Redis(port=port).flushall()  # features never loaded, or the alias lost
    strict = reader("error", port)
    with pytest.raises(FeatureStoreError, match="no live snapshot for user"):
        strict.fetch({"user": ["u1"]})
    assert strict.problems() == [
        "no live feature snapshot for user (features never loaded, or the alias lost)"
    ]
    lenient = reader("defaults", port)
    feats = lenient.fetch({"user": ["u1"]})
    assert feats.unavailable == "no live snapshot for user" and feats.values("age") == [-1.0]
    assert lenient.problems() == []  # defaults are acceptable: not a readiness problem
