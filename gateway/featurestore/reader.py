"""The request path's feature stage: read online features from Redis in one round trip.

Per request, one pipeline carries, for every entity kind involved, a ``GET`` of
its live-snapshot alias plus the data reads under the snapshot this worker last
saw (``HMGET`` per entity for hash views; one ``MGET`` per vector view on a
single server, one ``GET`` per key on a cluster, where keys span slots). If an
alias moved since, the reads are redone once under the new snapshot, so a
request never mixes two snapshots and a switch is picked up on the next request.
Missing entities get the spec's declared defaults and are counted, and the rows they
affect are known (``Features.defaulted``).

When the store cannot be read (down, too slow, or the entity has no live snapshot: never
loaded, or its alias lost) each view's ``on_unavailable`` policy decides: declared
defaults for every entity (``Features.unavailable`` says why; the answer is flagged
degraded), or a 503. After a failed round trip the reader backs off (50 ms, doubling to
2 s) and answers from the policy without waiting on Redis; the first request after the
backoff tries again, and the pool reconnects by itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from gateway.errors import FeatureStoreError
from gateway.featurestore import keys
from gateway.featurestore.cache import Array, Rows, Stamp, TableCache, ViewTable
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
    defaulted: dict[str, Array] = field(default_factory=dict)  # view -> per row: entity absent (if any)
    unavailable: str = ""  # why every feature is a declared default ("" when the store answered)

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
    password = settings.redis_password()
    if password is not None:
        common["password"] = password
    if settings.redis_cluster:
        return RedisCluster.from_url(settings.redis_url, **common)
    # One immediate retry on a broken connection (a pooled one gone stale when Redis restarted);
    # never a backoff on the request path: an outage is the reader's to handle (see Backoff).
    retry = Retry(NoBackoff(), 1)
    return redis.Redis.from_url(settings.redis_url, health_check_interval=30, retry=retry, **common)


class Backoff:
    """After a failure, how long to leave the store alone: 50 ms, doubling to 2 s, reset by a success."""

    def __init__(self, first_s: float = 0.05, cap_s: float = 2.0) -> None:
        self.first_s, self.cap_s = first_s, cap_s
        self.wait_s = 0.0
        self.until = 0.0
        self.last_error = ""

    def active(self) -> bool:
        return self.wait_s > 0 and time.monotonic() < self.until

    def failed(self, error: str) -> None:
        self.wait_s = min(self.cap_s, self.wait_s * 2 or self.first_s)
        self.until = time.monotonic() + self.wait_s
        self.last_error = error

    def ok(self) -> None:
        self.wait_s = 0.0


class FeatureReader:
    """Reads the spec's feature views (or ``views`` of it) for the entity ids of one request."""

    def __init__(
        self,
        spec: ModelSpec,
        client: RedisClient,
        cluster: bool = False,
        views: list[FeatureView] | None = None,
    ) -> None:
        self.model = spec.name
        self.client = client
        self.cluster = cluster
        self.views = spec.feature_views if views is None else views
        self.strict = [v.name for v in self.views if v.on_unavailable == "error"]
        self.backoff = Backoff()
        self.entities = sorted({v.entity for v in self.views})
        self.cache = TableCache(self.views)
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
        if self.backoff.active():
            return self._unavailable(entity_ids, unique, f"unreachable ({self.backoff.last_error})")
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
            self.backoff.failed(f"{type(e).__name__}: {e}")
            return self._unavailable(entity_ids, unique, self.backoff.last_error)
        self.backoff.ok()
        gone = [e for e in self.entities if stamps[e] is None]
        if gone:
            self._no_snapshot(gone)
        feats = self._assemble(entity_ids, unique, tables, stamps)
        if gone:
            feats.unavailable = f"no live snapshot for {', '.join(gone)}"
        for name, v in self.cache.views.items():
            read = reads.get(name, 0)
            feats.cache[name] = CacheUse(held=len(unique[v.entity]) - read, read=read)
        return feats

    def _unavailable(
        self, entity_ids: dict[str, list[str]], unique: dict[str, list[str]], why: str
    ) -> Features:
        """Every entity at its declared defaults, if every view's policy allows it; else a 503."""
        if self.strict:
            raise FeatureStoreError(f"feature store: {why}")
        tables = {v.name: ViewTable(v) for v in self.views}
        for v in self.views:
            tables[v.name].add(unique[v.entity], [None] * len(unique[v.entity]))
        feats = self._assemble(entity_ids, unique, tables, dict.fromkeys(self.entities))
        feats.unavailable = why
        return feats

    def _no_snapshot(self, entities: list[str]) -> None:
        strict = [v.name for v in self.views if v.entity in entities and v.on_unavailable == "error"]
        if strict:
            raise FeatureStoreError(
                f"feature store: no live snapshot for {', '.join(entities)} (features never loaded, or "
                f"the alias lost); views {strict} answer 503 then (on_unavailable: error)"
            )

    def problems(self) -> list[str]:
        """Why this reader cannot answer now, as readiness sees it (views whose policy is 503 only)."""
        if not self.strict:
            return []
        entities = sorted({v.entity for v in self.views if v.on_unavailable == "error"})
        try:
            aliases = self._execute([("GET", keys.alias_key(self.model, e)) for e in entities])
        except redis.RedisError as e:
            return [f"feature store (Redis) is unreachable: {type(e).__name__}: {e}"]
        return [
            f"no live feature snapshot for {e} (features never loaded, or the alias lost)"
            for e, alias in zip(entities, aliases, strict=True)
            if alias is None
        ]

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
        """Send every command in one write, read every reply: one round trip (redis-py's pipeline;
        a cluster's groups commands per node)."""
        pipe = self.client.pipeline(transaction=False)
        for cmd in commands:
            pipe.execute_command(*cmd)
        return list(pipe.execute())

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
            if taken.present is not None:
                feats.defaulted[v.name] = ~taken.present
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
