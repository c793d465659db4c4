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

# HMGET over many keys in one command (single server only: a cluster refuses a
# script whose keys span slots). Read-only; absent keys come back as all-nil rows.
HMGET_MANY = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('HMGET', key, unpack(ARGV))
end
return out
"""


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
    ) -> tuple[dict[str, int | None], dict[str, list[Any]]]:
        """Aliases as read now, and each view's raw values per unique id (read under ``snap``)."""
        commands: list[tuple[Any, ...]] = [("GET", keys.alias_key(self.model, e)) for e in self.entities]
        spans: list[tuple[FeatureView, int, bool]] = []  # view, first reply, one reply for every id
        for v in self.views:
            s = snap[v.entity]
            if s is None:
                continue
            ks = keys.data_keys(self.model, v.entity, s, v.name, unique[v.entity])
            together = not self.cluster and (v.kind == "vector" or len(ks) > 1)
            spans.append((v, len(commands), together))
            if v.kind == "hash" and together:
                commands.append(("EVAL", HMGET_MANY, len(ks), *ks, *v.fields))
            elif v.kind == "hash":
                commands.extend(("HMGET", k, *v.fields) for k in ks)
            elif self.cluster:
                commands.extend(("GET", k) for k in ks)
            else:
                commands.append(("MGET", *ks))
        out = self._execute(commands)
        n = len(self.entities)
        aliases = {
            e: (int(a) if a is not None else None) for e, a in zip(self.entities, out[:n], strict=True)
        }
        per_view = {
            v.name: list(out[first]) if together else out[first : first + len(unique[v.entity])]
            for v, first, together in spans
        }
        return aliases, per_view

    def _execute(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send every command in one write, read every reply: one round trip.

        On a single server this talks to a pooled connection directly (redis-py's
        pipeline object costs more CPU than the round trip itself); a cluster
        needs the cluster pipeline, which groups commands per node.
        """
        if self.cluster:
            pipe = self.client.pipeline(transaction=False)
            for cmd in commands:
                pipe.execute_command(*cmd)
            return list(pipe.execute())
        assert isinstance(self.client, redis.Redis)
        pool = self.client.connection_pool
        for attempt in (1, 2):
            conn: Any = pool.get_connection()  # redis-py's connection API is untyped
            try:
                conn.send_packed_command(conn.pack_commands(commands))
                return [conn.read_response() for _ in commands]
            except (redis.ConnectionError, redis.TimeoutError):
                conn.disconnect()  # a stale pooled connection (e.g. Redis restarted): retry once
                if attempt == 2:
                    raise
            except redis.ResponseError:
                conn.disconnect()  # replies still queued on this connection: do not reuse it
                raise
            finally:
                pool.release(conn)
        raise AssertionError("unreachable")

    def _assemble(
        self,
        entity_ids: dict[str, list[str]],
        unique: dict[str, list[str]],
        per_view: dict[str, list[Any]],
        snap: dict[str, int | None],
    ) -> Features:
        feats = Features(snapshots=dict(snap))
        index = {e: _positions(unique[e], entity_ids[e]) for e in self.entities}
        for v in self.views:
            ids = unique[v.entity]
            values = per_view.get(v.name) or [None] * len(ids)
            present = [_present(v, x) for x in values]
            feats.missing[v.name] = present.count(False)
            if v.kind == "hash":
                self._hash_columns(v, values, present, index[v.entity], feats)
            else:
                self._vector(v, values, present, index[v.entity], feats)
        return feats

    def _hash_columns(
        self, v: FeatureView, values: list[Any], present: list[bool], rows: list[int], feats: Features
    ) -> None:
        """Decode each unique entity once, then lay the values out per request row."""
        for j, (name, dec, default) in enumerate(self._decoders[v.name]):
            decoded = [
                dec(raw[j]) if ok and raw[j] is not None else default
                for raw, ok in zip(values, present, strict=True)
            ]
            feats.columns[name] = [decoded[r] for r in rows]

    def _vector(
        self, v: FeatureView, values: list[Any], present: list[bool], rows: list[int], feats: Features
    ) -> None:
        dim = v.dim or 0
        table = np.zeros((len(values), dim), dtype=np.float32)  # absent or mis-sized: zeros
        hit = [i for i, ok in enumerate(present) if ok]
        if hit:
            packed = b"".join(values[i] for i in hit)
            table[hit] = np.frombuffer(packed, dtype="<f4").reshape(len(hit), dim)
        feats.vectors[v.name] = (
            table[rows] if len(rows) != len(values) or rows != list(range(len(rows))) else table
        )


def _positions(unique: list[str], ids: list[str]) -> list[int]:
    where = {u: i for i, u in enumerate(unique)}
    return [where[i] for i in ids]


def _present(v: FeatureView, raw: Any) -> bool:
    if raw is None:
        return False
    if v.kind == "hash":
        return bool(raw.count(None) != len(raw))  # an absent key reads as all-nil fields
    return len(raw) == 4 * (v.dim or 0)
