"""Stage 2: read online features from Redis in one round trip.

Per request, one pipeline carries, for every entity kind involved, a ``GET`` of
its live-snapshot alias plus the data reads under the snapshot this worker last
saw (``HMGET`` per entity for hash views; one ``MGET`` per vector view on a
single server, one ``GET`` per key on a cluster, where keys span slots). If an
alias moved since, the reads are redone once under the new snapshot, so a
request never mixes two snapshots and a switch is picked up on the next request.
Missing entities get the spec's declared defaults and are counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis
from redis.cluster import RedisCluster

from gateway import keys
from gateway.errors import FeatureStoreError
from gateway.settings import Settings
from gateway.spec import FeatureView, ModelSpec

RedisClient = redis.Redis | RedisCluster


@dataclass
class Features:
    """Feature values aligned with the request rows."""

    columns: dict[str, list[Any]] = field(default_factory=dict)
    vectors: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)  # view -> entities not found
    snapshots: dict[str, int | None] = field(default_factory=dict)


def connect(settings: Settings) -> RedisClient:
    """One client (and connection pool) per worker process."""
    timeout = settings.redis_timeout_ms / 1000
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "max_connections": settings.redis_max_connections,
    }
    if settings.redis_cluster:
        return RedisCluster.from_url(settings.redis_url, **common)
    return redis.Redis.from_url(settings.redis_url, health_check_interval=30, **common)


def _decoder(dtype: str) -> Callable[[bytes], Any]:
    if dtype == "string":
        return lambda b: b.decode("utf-8", "replace")
    if dtype == "int":
        return int
    return float


class FeatureReader:
    """Reads the spec's feature views for the entity ids of one request."""

    def __init__(self, spec: ModelSpec, client: RedisClient, cluster: bool = False) -> None:
        self.model = spec.name
        self.client = client
        self.cluster = cluster
        self.views = spec.feature_views
        self.entities = sorted({v.entity for v in self.views})
        self._snap: dict[str, int | None] = dict.fromkeys(self.entities)
        self._decoders = {
            v.name: [(f, _decoder(h.dtype), h.default) for f, h in v.fields.items()] for v in self.views
        }

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def fetch(self, entity_ids: dict[str, list[str]]) -> Features:
        if not self.views:
            return Features()
        unique = {e: list(dict.fromkeys(entity_ids[e])) for e in self.entities}
        try:
            aliases, data = self._round_trip(unique, self._snap)
            if aliases != self._snap:  # a load switched snapshots: re-read under the new ones
                self._snap = aliases
                aliases, data = self._round_trip(unique, aliases)
                self._snap = aliases
        except redis.RedisError as e:
            raise FeatureStoreError(f"feature store: {type(e).__name__}: {e}") from e
        return self._assemble(entity_ids, unique, data, aliases)

    def _round_trip(
        self, unique: dict[str, list[str]], snap: dict[str, int | None]
    ) -> tuple[dict[str, int | None], list[Any]]:
        pipe = self.client.pipeline(transaction=False)
        for e in self.entities:
            pipe.get(keys.alias_key(self.model, e))
        for v in self.views:
            s = snap[v.entity]
            if s is None:
                continue
            ks = [keys.data_key(self.model, v.entity, s, v.name, i) for i in unique[v.entity]]
            if v.kind == "hash":
                names = list(v.fields)
                for k in ks:
                    pipe.hmget(k, names)
            elif self.cluster:
                for k in ks:
                    pipe.get(k)
            else:
                pipe.mget(ks)
        out = pipe.execute()
        n = len(self.entities)
        aliases = {
            e: (int(a) if a is not None else None) for e, a in zip(self.entities, out[:n], strict=True)
        }
        return aliases, out[n:]

    def _assemble(
        self,
        entity_ids: dict[str, list[str]],
        unique: dict[str, list[str]],
        data: list[Any],
        snap: dict[str, int | None],
    ) -> Features:
        feats = Features(snapshots=dict(snap))
        pos = 0
        for v in self.views:
            ids = unique[v.entity]
            if snap[v.entity] is None:
                values: list[Any] = [None] * len(ids)
            elif v.kind == "hash" or self.cluster:
                values, pos = data[pos : pos + len(ids)], pos + len(ids)
            else:
                values, pos = data[pos], pos + 1
            by_id = dict(zip(ids, values, strict=True))
            rows = [by_id[i] for i in entity_ids[v.entity]]
            feats.missing[v.name] = sum(1 for x in values if not _present(v, x))
            if v.kind == "hash":
                self._hash_columns(v, rows, feats)
            else:
                self._vector(v, rows, feats)
        return feats

    def _hash_columns(self, v: FeatureView, rows: list[Any], feats: Features) -> None:
        cols: dict[str, list[Any]] = {f: [] for f in v.fields}
        decoders = self._decoders[v.name]
        absent = [None] * len(decoders)
        for row in rows:
            for (name, dec, default), raw in zip(decoders, row or absent, strict=True):
                cols[name].append(default if raw is None else dec(raw))
        feats.columns.update(cols)

    def _vector(self, v: FeatureView, rows: list[Any], feats: Features) -> None:
        dim = v.dim or 0
        out = np.zeros((len(rows), dim), dtype=np.float32)
        for i, raw in enumerate(rows):
            if raw is not None and len(raw) == 4 * dim:  # else absent or mis-sized: zeros
                out[i] = np.frombuffer(raw, dtype="<f4")
        feats.vectors[v.name] = out


def _present(v: FeatureView, raw: Any) -> bool:
    if raw is None:
        return False
    if v.kind == "hash":
        return any(x is not None for x in raw)
    return len(raw) == 4 * (v.dim or 0)
