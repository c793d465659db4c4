"""The request path's feature stage: read online features from Redis in one round trip.

Per request, one pipeline carries, for every entity kind involved, a ``GET`` of
its live-snapshot alias plus the data reads under the snapshot this worker last
saw (``HMGET`` per entity for hash views; one ``MGET`` per vector view on a
single server, one ``GET`` per key on a cluster, where keys span slots). If an
alias moved since, the reads are redone once under the new snapshot, so a
request never mixes two snapshots and a switch is picked up on the next request.
Missing entities get the spec's declared defaults and are counted.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis
from redis.cluster import RedisCluster

from gateway.errors import FeatureStoreError
from gateway.featurestore import keys
from gateway.featurestore.cache import Array, Rows, Stamp, TableCache, ViewTable
from gateway.settings import Settings
from gateway.spec import ModelSpec

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


@dataclass(frozen=True, slots=True)
class CacheUse:
    """Entities of a cached view one request needed: already held by the worker, or read from Redis."""

    held: int
    read: int


@dataclass
class Features:
    """Feature values aligned with the request rows, as plain numpy arrays.

    ``columns``: per hash field, one value per row: ``float64`` for float fields, an object
    array of ``str`` (string fields) or ``int`` (int fields) otherwise. ``vectors``: per
    vector view, a ``(rows, dim)`` ``float32`` matrix. Absent entities carry the declared
    defaults and are counted in ``missing``.
    """

    columns: dict[str, Array] = field(default_factory=dict)
    vectors: dict[str, Array] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)  # view -> entities not found
    snapshots: dict[str, int | None] = field(default_factory=dict)
    cache: dict[str, CacheUse] = field(default_factory=dict)  # cached view -> use

    def values(self, name: str) -> list[Any]:
        """A hash field's value per request row, as Python values."""
        return self.columns[name].tolist()  # type: ignore[no-any-return]


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


class FeatureReader:
    """Reads the spec's feature views for the entity ids of one request."""

    def __init__(self, spec: ModelSpec, client: RedisClient, cluster: bool = False) -> None:
        self.model = spec.name
        self.client = client
        self.cluster = cluster
        self.views = spec.feature_views
        self.entities = sorted({v.entity for v in self.views})
        self.cache = TableCache(self.views)
        self._local = threading.local()
        self._generations = sorted({v.entity for v in self.cache.views.values()})
        self._state: dict[str, Stamp | None] = dict.fromkeys(self.entities)

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
            state = self._state
            reads: dict[str, int] = {}
            tables = self._tables(state, unique)
            stamps = self._round_trip(unique, state, tables, reads)
            if stamps != state:  # a load switched snapshots or updated one: re-read under the new state
                self._state = stamps
                tables = self._tables(stamps, unique)
                stamps = self._round_trip(unique, stamps, tables, reads)
                self._state = stamps
                self._adopt(tables, stamps)
        except redis.RedisError as e:
            raise FeatureStoreError(f"feature store: {type(e).__name__}: {e}") from e
        feats = self._assemble(entity_ids, unique, tables, stamps)
        for name, v in self.cache.views.items():
            read = reads.get(name, 0)
            feats.cache[name] = CacheUse(held=len(unique[v.entity]) - read, read=read)
        return feats

    def _tables(self, state: dict[str, Stamp | None], unique: dict[str, list[str]]) -> dict[str, ViewTable]:
        """Per view: the worker's cached table under ``state``, or a table for this request alone."""
        out: dict[str, ViewTable] = {}
        for v in self.views:
            stamp = state[v.entity]
            n = len(unique[v.entity])
            if v.name in self.cache.views and stamp is not None and stamp.generation is not None:
                out[v.name] = self.cache.table(v.name, stamp, n)
            else:
                out[v.name] = ViewTable(v, stamp)
        return out

    def _adopt(self, tables: dict[str, ViewTable], stamps: dict[str, Stamp | None]) -> None:
        """Cache what a request read under a snapshot it met for the first time."""
        for name in self.cache.views:
            t, stamp = tables[name], stamps[self.cache.views[name].entity]
            if (
                stamp is not None
                and t.stamp is not None
                and t.stamp.generation is None
                and t.stamp.snapshot == stamp.snapshot
            ):
                self.cache.adopt(name, t, stamp)

    def _round_trip(
        self,
        unique: dict[str, list[str]],
        state: dict[str, Stamp | None],
        tables: dict[str, ViewTable],
        reads: dict[str, int],
    ) -> dict[str, Stamp | None]:
        """Read what ``tables`` lack under ``state`` into them; returns the state as read now.

        ``reads`` gets, per view, how many entities this pass had to read.
        """
        commands: list[tuple[Any, ...]] = [("GET", keys.alias_key(self.model, e)) for e in self.entities]
        for e in self._generations:  # only cached views depend on the generation
            stamp = state[e]
            if stamp is not None:
                commands.append(("HGET", keys.meta_key(self.model, e, stamp.snapshot), keys.GENERATION_FIELD))
        gens_end = len(commands)
        spans: list[tuple[ViewTable, list[str], int, bool]] = []  # table, ids read, first reply, one reply
        for v in self.views:
            stamp = state[v.entity]
            need = tables[v.name].missing(unique[v.entity])
            reads[v.name] = len(need)
            if not need:
                continue
            if stamp is None:  # no snapshot loaded yet: every entity is absent
                tables[v.name].add(need, [None] * len(need))
                continue
            ks = keys.data_keys(self.model, v.entity, stamp.snapshot, v.name, need)
            together = not self.cluster and (v.kind == "vector" or len(ks) > 1)
            spans.append((tables[v.name], need, len(commands), together))
            if v.kind == "hash" and together:
                commands.append(("EVAL", HMGET_MANY, len(ks), *ks, *v.fields))
            elif v.kind == "hash":
                commands.extend(("HMGET", k, *v.fields) for k in ks)
            elif self.cluster:
                commands.extend(("GET", k) for k in ks)
            else:
                commands.append(("MGET", *ks))
        out = self._execute(commands)
        for table, need, first, together in spans:
            table.add(need, list(out[first]) if together else out[first : first + len(need)])
        return self._stamps(out[: len(self.entities)], out[len(self.entities) : gens_end], state)

    def _stamps(
        self, aliases: list[Any], gens: list[Any], state: dict[str, Stamp | None]
    ) -> dict[str, Stamp | None]:
        read = dict(zip([e for e in self._generations if state[e] is not None], gens, strict=True))
        stamps: dict[str, Stamp | None] = {}
        for e, alias in zip(self.entities, aliases, strict=True):
            if alias is None:
                stamps[e] = None
                continue
            snap, old = int(alias), state[e]
            if old is not None and old.snapshot == snap:
                stamps[e] = Stamp(snap, int(read[e] or 0) if e in read else 0)
            else:  # a new snapshot: its generation is read with the data, on the retry
                stamps[e] = Stamp(snap, None if e in self._generations else 0)
        return stamps

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
        conn = self._connection()
        for attempt in (1, 2):
            try:
                conn.send_packed_command(conn.pack_commands(commands))
                return [conn.read_response() for _ in commands]
            except (redis.ConnectionError, redis.TimeoutError):
                conn.disconnect()  # stale (e.g. Redis restarted): the retry connects afresh
                if attempt == 2:
                    raise
            except redis.ResponseError:
                conn.disconnect()  # replies still queued on this connection: start clean next time
                raise
        raise AssertionError("unreachable")

    def _connection(self) -> Any:
        """This thread's own connection, taken from the pool once and kept (redis-py's API is untyped).

        Every round trip reads all of its replies, or disconnects, so the connection is
        always clean for the next; keeping it skips the pool's per-use locking and fork checks.
        """
        conn = getattr(self._local, "conn", None)
        if conn is None:
            assert isinstance(self.client, redis.Redis)
            conn = self._local.conn = self.client.connection_pool.get_connection()
        return conn

    def _assemble(
        self,
        entity_ids: dict[str, list[str]],
        unique: dict[str, list[str]],
        tables: dict[str, ViewTable],
        stamps: dict[str, Stamp | None],
    ) -> Features:
        feats = Features(snapshots={e: (s.snapshot if s is not None else None) for e, s in stamps.items()})
        rows = {e: _positions(unique[e], entity_ids[e]) for e in self.entities}
        for v in self.views:
            taken = tables[v.name].take(unique[v.entity], rows[v.entity])
            feats.missing[v.name] = taken.absent
            if taken.vectors is None:
                feats.columns.update(taken.columns)
            else:
                feats.vectors[v.name] = taken.vectors
        return feats


def _positions(unique: list[str], ids: list[str]) -> Rows:
    """Each request row's position in ``unique`` (None when every id is there once, in order)."""
    if len(unique) == len(ids):  # ``unique`` keeps first appearances in order: it is ``ids``
        return None
    where = {u: i for i, u in enumerate(unique)}
    return np.array([where[i] for i in ids], dtype=np.intp)
