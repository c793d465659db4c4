"""Bulk loads against a real redis-server: snapshots, one alias switch, no mixed reads, clean-up."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import redis

from gateway.featurestore import keys
from gateway.featurestore.commands import get_features
from gateway.featurestore.load import gc_snapshots, load_entity, update_entity
from gateway.featurestore.reader import FeatureReader
from gateway.featurestore.table import BadRows
from gateway.procs import python
from tests.featurestore.support import DIM, small_spec, users, vectors_of
from tests.support import REPO

pytestmark = pytest.mark.integration
DB = 3


@pytest.fixture
def client(redis_server: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_server.rsplit("/", 1)[0] + f"/{DB}")
    c.flushdb()
    yield c
    c.close()


def _snapshot_keys(client: redis.Redis, model: str, snap: int) -> list[bytes]:
    return list(client.scan_iter(match=keys.snapshot_prefix(model, "user", snap) + "*", count=1000))


def test_load_then_read_through_the_service_reader(client: redis.Redis) -> None:
    spec = small_spec()
    table = users(50)
    s = load_entity(client, spec, "user", table)
    assert (s.snapshot, s.rows, s.keys, s.switched) == (1, 50, 100, True)
    assert client.get(keys.alias_key("fs", "user")) == b"1"
    assert client.hgetall(keys.data_key("fs", "user", 1, "profile", "u3")) == {
        b"age": b"30.0",
        b"visits": b"3",
        b"tier": b"gold",
    }
    feats = FeatureReader(spec, client).fetch({"user": ["u7", "nobody", "u0"]})
    assert feats.values("age") == [30.0, -1.0, 30.0]
    assert feats.values("visits") == [7, 0, 0] and feats.values("tier") == ["basic", "none", "gold"]
    np.testing.assert_array_equal(feats.vectors["emb"][[0, 2]], vectors_of(table)[[7, 0]])
    assert feats.vectors["emb"][1].tolist() == [0.0] * DIM
    assert feats.missing == {"profile": 1, "emb": 1}


def _alias_switches(client: redis.Redis, spec_name: str) -> tuple[Any, threading.Event, list[str]]:
    """Count writes to the alias with keyspace notifications; a sentinel key marks the end."""
    client.config_set("notify-keyspace-events", "K$")
    pubsub = client.pubsub()
    alias = f"__keyspace@{DB}__:{keys.alias_key(spec_name, 'user')}"
    sentinel = f"__keyspace@{DB}__:sentinel"
    pubsub.subscribe(alias, sentinel)
    events: list[str] = []
    done = threading.Event()

    def listen() -> None:
        for msg in pubsub.listen():
            if msg["type"] != "message":
                continue
            if msg["channel"].decode() == sentinel:
                done.set()
                return
            events.append(msg["data"].decode())

    while pubsub.get_message(timeout=1.0) is not None:  # both subscribe confirmations
        pass
    threading.Thread(target=listen, daemon=True).start()
    return pubsub, done, events


def test_100k_rows_one_switch_and_readers_never_see_a_mix(client: redis.Redis) -> None:
    spec = small_spec()
    load_entity(client, spec, "user", users(1000, age=20.0))
    probe = [f"u{i}" for i in range(0, 1000, 37)]  # ids spread over many chunks
    seen: list[set[float]] = []
    loading = threading.Event()
    stop = threading.Event()
    during = []

    def reader() -> None:
        r = FeatureReader(spec, redis.Redis(connection_pool=client.connection_pool))
        while not stop.is_set():
            feats = r.fetch({"user": probe})
            seen.append(set(feats.values("age")))
            if loading.is_set():
                during.append(1)

    in_load: list[set[float]] = []
    checker = FeatureReader(spec, client)

    def progress(rows: int) -> None:  # runs between chunks: the new snapshot is half written
        loading.set()
        in_load.append(set(checker.fetch({"user": probe}).values("age")))

    pubsub, done, events = _alias_switches(client, "fs")
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        s = load_entity(client, spec, "user", users(100_000, age=70.0, seed=1), chunk=2000, progress=progress)
        loading.clear()
        client.set("sentinel", 1)
        assert done.wait(10)
        after = set(FeatureReader(spec, client).fetch({"user": probe}).values("age"))
    finally:
        stop.set()
        thread.join()
        pubsub.close()
        client.config_set("notify-keyspace-events", "")
    assert s.rows == 100_000 and s.keys == 200_000 and s.snapshot == 2
    assert events == ["set"], f"alias writes during the load: {events}"
    assert in_load and all(v == {20.0} for v in in_load)  # half-written snapshot never visible
    assert during, "the reader loop did not run while the load was in progress"
    assert all(v in ({20.0}, {70.0}) for v in seen), [v for v in seen if len(v) != 1][:3]
    assert after == {70.0}


def test_incremental_update_is_visible_row_by_row(client: redis.Redis) -> None:
    """Control for the test above: in-place updates do show a mix mid-way, and the probe sees it."""
    spec = small_spec()
    load_entity(client, spec, "user", users(10_000, age=20.0))
    probe = [f"u{i}" for i in range(0, 10_000, 997)]
    checker = FeatureReader(spec, client)
    mid: list[set[float]] = []
    s = update_entity(
        client,
        spec,
        "user",
        users(10_000, age=70.0),
        chunk=1000,
        progress=lambda _: mid.append(set(checker.fetch({"user": probe}).values("age"))),
    )
    assert mid[0] == {20.0, 70.0}
    assert s.incremental and s.snapshot == 1 and s.keys == 10_000 and s.unchanged == 0


def test_incremental_writes_only_changed_keys(client: redis.Redis) -> None:
    spec = small_spec()
    table = users(200)
    load_entity(client, spec, "user", table)
    changed = table.copy()
    changed.loc[5, "tier"] = "platinum"  # one hash
    changed.loc[9, "emb_2"] = 9.5  # one vector
    changed.loc[11, "age"] = 30.000000001  # a real change in the last digits
    pubsub, done, events = _monitor_writes(client)
    try:
        s = update_entity(client, spec, "user", changed.iloc[:150])
        client.set("sentinel", 1)
        assert done.wait(10)
    finally:
        pubsub.close()
        client.config_set("notify-keyspace-events", "")
    assert (s.rows, s.keys, s.unchanged) == (150, 3, 147)
    written = sorted(k for k, ev in events if ev in ("hset", "set") and ":{" in k)
    assert written == sorted(
        [
            keys.data_key("fs", "user", 1, "profile", "u5"),
            keys.data_key("fs", "user", 1, "emb", "u9"),
            keys.data_key("fs", "user", 1, "profile", "u11"),
        ]
    )
    feats = FeatureReader(spec, client).fetch({"user": ["u5", "u9", "u11", "u199"]})
    assert feats.values("tier")[0] == "platinum" and feats.vectors["emb"][1][2] == 9.5
    assert feats.values("age")[2] == 30.000000001 and feats.values("age")[3] == 30.0


def _monitor_writes(client: redis.Redis) -> tuple[Any, threading.Event, list[tuple[str, str]]]:
    client.config_set("notify-keyspace-events", "KA")
    pubsub = client.pubsub()
    pubsub.psubscribe(f"__keyspace@{DB}__:*")
    assert pubsub.get_message(timeout=1.0) is not None
    events: list[tuple[str, str]] = []
    done = threading.Event()
    prefix = f"__keyspace@{DB}__:"

    def listen() -> None:
        for msg in pubsub.listen():
            if msg["type"] != "pmessage":
                continue
            key = msg["channel"].decode()[len(prefix) :]
            if key == "sentinel":
                done.set()
                return
            events.append((key, msg["data"].decode()))

    threading.Thread(target=listen, daemon=True).start()
    return pubsub, done, events


def test_malformed_file_leaves_the_live_namespace_untouched(client: redis.Redis, tmp_path: Path) -> None:
    spec = small_spec()
    load_entity(client, spec, "user", users(300))
    before = {k: client.dump(k) for k in client.scan_iter(count=1000)}
    bad = users(300, age=70.0)
    bad["age"] = bad["age"].astype(object)
    bad.loc[250, "age"] = "seventy"
    path = tmp_path / "user.csv"
    bad.to_csv(path, index=False)
    result = _cli("features", "load", "fs", str(path), "--redis-url", _url(client), root=_spec_root(tmp_path))
    assert result.returncode == 2
    assert "line 252: age: 'seventy' is not a finite number" in result.stderr
    assert "nothing was written" in result.stderr and "Traceback" not in result.stderr
    after = {k: client.dump(k) for k in client.scan_iter(count=1000)}
    assert after == before
    with pytest.raises(BadRows):
        update_entity(client, spec, "user", _with_bad_row(users(10)))
    assert {k: client.dump(k) for k in client.scan_iter(count=1000)} == before


def _with_bad_row(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["visits"] = frame["visits"].astype(float)
    frame.loc[4, "visits"] = 1.5
    return frame


def test_old_snapshots_are_collected_keeping_n(client: redis.Redis) -> None:
    spec = small_spec()
    removed = [load_entity(client, spec, "user", users(500, age=float(i)), keep=2).removed for i in range(4)]
    assert removed == [[], [], [1], [2]]
    assert [_snapshot_keys(client, "fs", s) for s in (1, 2)] == [[], []]
    assert len(_snapshot_keys(client, "fs", 3)) == 1001  # 500 x 2 views + meta
    assert client.zrange(keys.snapshots_key("fs", "user"), 0, -1) == [b"3", b"4"]
    s = load_entity(client, spec, "user", users(10), keep=3)
    assert s.removed == [] and client.zrange(keys.snapshots_key("fs", "user"), 0, -1) == [b"3", b"4", b"5"]
    with pytest.raises(ValueError, match="keep must be at least 2"):
        load_entity(client, spec, "user", users(10), keep=1)


def test_a_slower_older_load_never_moves_the_alias_back(client: redis.Redis) -> None:
    spec = small_spec()
    load_entity(client, spec, "user", users(10, age=1.0))
    inner: list[Any] = []

    def newer_load_meanwhile(_: int) -> None:
        if not inner:
            inner.append(load_entity(client, spec, "user", users(10, age=3.0)))

    slow = load_entity(client, spec, "user", users(10, age=2.0), chunk=5, progress=newer_load_meanwhile)
    assert (slow.snapshot, inner[0].snapshot) == (2, 3)
    assert inner[0].switched and not slow.switched
    assert client.get(keys.alias_key("fs", "user")) == b"3"
    assert FeatureReader(spec, client).fetch({"user": ["u1"]}).values("age") == [3.0]
    # the inner load's clean-up left the outer snapshot alone while it was still loading
    assert inner[0].removed == [] and slow.removed == [1]
    assert gc_snapshots(client, "fs", "user", keep=2) == []


def _spec_root(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    (root / "fs").mkdir(parents=True)
    (root / "fs" / "model.yaml").write_text(json.dumps(small_spec().model_dump(mode="json")))
    return root


def _url(client: redis.Redis) -> str:
    kw = client.connection_pool.connection_kwargs
    return f"redis://{kw['host']}:{kw['port']}/{kw['db']}"


def _cli(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python(), "-m", "gateway.cli", *args, "--root", str(root)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_load_and_get_show_what_the_service_reads(client: redis.Redis, tmp_path: Path) -> None:
    root = _spec_root(tmp_path)
    table = users(20)
    table.to_parquet(tmp_path / "user.parquet")
    out = _cli(
        "features", "load", "fs", str(tmp_path / "user.parquet"), "--redis-url", _url(client), root=root
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("fs/user: 20 rows, 40 keys -> snapshot 1 (now live)")
    assert "\r" not in out.stderr  # no progress bar when stderr is not a terminal
    table.loc[4, "tier"] = "gold"
    table.to_csv(tmp_path / "user.csv", index=False)
    out = _cli(
        "features",
        "load",
        "fs",
        str(tmp_path / "user.csv"),
        "--incremental",
        "--redis-url",
        _url(client),
        root=root,
    )
    assert out.returncode == 0, out.stderr
    assert "1 keys changed, 19 rows unchanged, in live snapshot 1" in out.stdout
    got = _cli("features", "get", "fs", "u4", "ghost", "--compact", "--redis-url", _url(client), root=root)
    assert got.returncode == 0, got.stderr
    recs = [json.loads(line) for line in got.stdout.splitlines()]
    assert recs == get_features(client, small_spec(), "user", ["u4", "ghost"])
    assert (
        recs[0]["found"] == {"profile": True, "emb": True}
        and recs[0]["features"]["profile"]["tier"] == "gold"
    )
    assert recs[1]["found"] == {"profile": False, "emb": False}
    assert recs[1]["features"] == {"profile": {"age": -1.0, "visits": 0, "tier": "none"}, "emb": [0.0] * DIM}
