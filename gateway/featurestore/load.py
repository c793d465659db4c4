"""Bulk-load an entity table into a new snapshot, then switch the alias to it.

A full load validates the whole table first (see ``gateway.featurestore.table``),
writes a fresh snapshot namespace with pipelined writes in chunks, marks it
complete and only then moves the entity's alias with a single write. Readers
resolve the alias and read under one snapshot, so they see the old snapshot or
the new one, never a mix; a failed load never moves the alias and its partial
snapshot is removed. Older snapshots beyond ``keep`` are deleted afterwards.

An incremental load (``incremental=True``) compares each row with what the live
snapshot holds and writes only the keys that changed, in place: each key is
replaced atomically, but a reader may see some rows updated and others not yet.
Once every key is written, the snapshot's generation is incremented, which tells
workers that cache entities of this snapshot to read them again.

Works against a single server and against Redis Cluster (every key of one
entity carries its hash tag; no multi-key command spans entities).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import redis

from gateway.featurestore import keys
from gateway.featurestore.table import ID_COLUMN, Encoded, encode, entity_views, read_table
from gateway.spec import FeatureView, ModelSpec

__all__ = ["ID_COLUMN", "LoadSummary", "gc_snapshots", "load_entity", "read_table", "update_entity"]

DEFAULT_CHUNK = 2000
DEFAULT_KEEP = 2
MIN_KEEP = 2
# A snapshot still "loading" after this long belongs to a loader that died.
STALE_LOADING_S = 3600
Progress = Callable[[int], None]

# Move the alias forward only: a slow loader finishing after a newer load never rolls it back.
_SWITCH = """
local live = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > live then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


@dataclass
class LoadSummary:
    model: str
    entity: str
    snapshot: int
    rows: int
    keys: int
    bytes: int
    seconds: float
    incremental: bool = False
    switched: bool = True
    unchanged: int = 0
    removed: list[int] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.incremental:
            what = (
                f"{self.keys} keys changed, {self.unchanged} rows unchanged, in live snapshot {self.snapshot}"
            )
        else:
            state = "now live" if self.switched else "NOT switched: a newer snapshot is live"
            what = f"{self.keys} keys -> snapshot {self.snapshot} ({state})"
        extra = f"; removed snapshots {self.removed}" if self.removed else ""
        ignored = f"; ignored columns {self.ignored_columns}" if self.ignored_columns else ""
        return (
            f"{self.model}/{self.entity}: {self.rows} rows, {what}, {self.bytes / 1e6:.2f} MB, "
            f"{self.seconds:.2f}s{extra}{ignored}"
        )


def new_snapshot(client: Any, model: str, entity: str) -> int:
    """A fresh snapshot id, unique even if several loaders run at once."""
    snap = int(client.incr(keys.seq_key(model, entity)))
    newest = client.zrevrange(keys.snapshots_key(model, entity), 0, 0)
    floor = max([int(x) for x in newest] + [int(client.get(keys.alias_key(model, entity)) or 0)])
    if snap <= floor:  # the counter was lost (e.g. restored from an old dump): jump past what exists
        client.set(keys.seq_key(model, entity), floor)
        snap = int(client.incr(keys.seq_key(model, entity)))
    return snap


def live_snapshot(client: Any, model: str, entity: str) -> int | None:
    raw = client.get(keys.alias_key(model, entity))
    return int(raw) if raw is not None else None


def load_entity(
    client: redis.Redis | Any,
    spec: ModelSpec,
    entity: str,
    table: pd.DataFrame,
    *,
    chunk: int = DEFAULT_CHUNK,
    keep: int = DEFAULT_KEEP,
    progress: Progress | None = None,
) -> LoadSummary:
    """Validate ``table``, write it as a new snapshot, switch the alias, collect old snapshots."""
    if keep < MIN_KEEP:
        # The previous snapshot must outlive one more load: a reader may still be reading it.
        raise ValueError(f"keep must be at least {MIN_KEEP}, got {keep}")
    _check_chunk(chunk)
    t0 = time.perf_counter()
    data = encode(spec, entity, table)
    views = entity_views(spec, entity)
    model = spec.name
    snap = _begin_snapshot(client, model, entity, _source(table))
    try:
        n_keys, n_bytes = _write_snapshot(client, _Target(model, entity, snap, views), data, chunk, progress)
    except BaseException:
        with contextlib.suppress(redis.RedisError):
            _delete_snapshot(client, model, entity, snap)
        raise
    client.hset(
        keys.meta_key(model, entity, snap),
        mapping={
            "state": "complete",
            "rows": data.rows,
            "keys": n_keys,
            "bytes": n_bytes,
            "loaded_at": int(time.time()),
        },
    )
    switched = bool(client.eval(_SWITCH, 1, keys.alias_key(model, entity), snap))
    removed = gc_snapshots(client, model, entity, keep)
    return LoadSummary(
        model,
        entity,
        snap,
        data.rows,
        n_keys,
        n_bytes,
        time.perf_counter() - t0,
        switched=switched,
        removed=removed,
        ignored_columns=data.ignored_columns,
    )


def _begin_snapshot(client: Any, model: str, entity: str, source: str) -> int:
    """Allocate a snapshot and register it as loading, so clean-up knows about it even if we die."""
    snap = new_snapshot(client, model, entity)
    client.zadd(keys.snapshots_key(model, entity), {str(snap): snap})
    meta = {"state": "loading", "started_at": int(time.time()), "source": source}
    client.hset(keys.meta_key(model, entity, snap), mapping=meta)
    return snap


def _check_chunk(chunk: int) -> None:
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of rows, got {chunk}")


def _source(table: pd.DataFrame) -> str:
    return str(table.attrs.get("source", "dataframe"))


@dataclass(frozen=True)
class _Target:
    """Where one entity's rows go: model, entity, snapshot and the entity's views."""

    model: str
    entity: str
    snapshot: int
    views: list[FeatureView]

    def key(self, view: FeatureView, entity_id: str) -> str:
        return keys.data_key(self.model, self.entity, self.snapshot, view.name, entity_id)


def _write_snapshot(
    client: Any, target: _Target, data: Encoded, chunk: int, progress: Progress | None
) -> tuple[int, int]:
    n_keys = n_bytes = 0
    pipe = client.pipeline(transaction=False)
    for start in range(0, data.rows, chunk):
        stop = min(start + chunk, data.rows)
        for v in target.views:
            for i in range(start, stop):
                key = target.key(v, data.ids[i])
                _queue_write(pipe, key, v, data, i)
                n_bytes += len(key)
                n_keys += 1
        pipe.execute()
        if progress is not None:
            progress(stop - start)
    return n_keys, n_bytes + sum(data.value_bytes.values())


def _queue_write(pipe: Any, key: str, view: FeatureView, data: Encoded, i: int) -> int:
    """Queue one key's write; returns the bytes of its values."""
    if view.kind == "vector":
        value = data.vectors[view.name][i]
        pipe.set(key, value)
        return len(value)
    row = data.hashes[view.name][i]
    args: list[str] = []
    for name, text in zip(view.fields, row, strict=True):
        args += (name, text)
    pipe.execute_command("HSET", key, *args)
    return sum(map(len, args))


def update_entity(
    client: redis.Redis | Any,
    spec: ModelSpec,
    entity: str,
    table: pd.DataFrame,
    *,
    chunk: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
) -> LoadSummary:
    """Write only the keys whose values differ from the live snapshot's (rows absent from the table stay)."""
    _check_chunk(chunk)
    t0 = time.perf_counter()
    data = encode(spec, entity, table)
    views = entity_views(spec, entity)
    snap = live_snapshot(client, spec.name, entity)
    if snap is None:
        raise ValueError(f"{spec.name}/{entity}: no live snapshot to update; run a full load first")
    n_keys = n_bytes = changed_rows = 0
    for start in range(0, data.rows, chunk):
        stop = min(start + chunk, data.rows)
        diff = _diff_chunk(client, _Target(spec.name, entity, snap, views), data, range(start, stop))
        pipe = client.pipeline(transaction=False)
        for key, view, i in diff:
            n_bytes += len(key) + _queue_write(pipe, key, view, data, i)
        pipe.execute()
        n_keys += len(diff)
        changed_rows += len({i for _, _, i in diff})
        if progress is not None:
            progress(stop - start)
    meta = keys.meta_key(spec.name, entity, snap)
    pipe = client.pipeline(transaction=False)
    pipe.hset(meta, "updated_at", int(time.time()))
    if n_keys:  # after every write: workers caching this snapshot drop what they hold
        pipe.hincrby(meta, keys.GENERATION_FIELD, 1)
    pipe.execute()
    return LoadSummary(
        spec.name,
        entity,
        snap,
        data.rows,
        n_keys,
        n_bytes,
        time.perf_counter() - t0,
        incremental=True,
        switched=False,
        unchanged=data.rows - changed_rows,
        ignored_columns=data.ignored_columns,
    )


def _diff_chunk(
    client: Any, target: _Target, data: Encoded, rows: range
) -> list[tuple[str, FeatureView, int]]:
    """(key, view, row) of every key in ``rows`` whose stored value differs from the new one."""
    pipe = client.pipeline(transaction=False)
    todo = []
    for v in target.views:
        for i in rows:
            key = target.key(v, data.ids[i])
            if v.kind == "vector":
                pipe.get(key)
            else:
                pipe.hmget(key, list(v.fields))
            todo.append((key, v, i))
    current = pipe.execute()
    return [(k, v, i) for (k, v, i), old in zip(todo, current, strict=True) if _differs(v, data, i, old)]


def _differs(view: FeatureView, data: Encoded, i: int, old: Any) -> bool:
    if view.kind == "vector":
        return bool(old != data.vectors[view.name][i])
    for fld, new, raw in zip(view.fields.values(), data.hashes[view.name][i], old, strict=True):
        if raw is None:
            return True
        text = raw.decode("utf-8", "replace")
        if fld.dtype == "string":
            if text != new:
                return True
        else:
            try:
                if float(text) != float(new):
                    return True
            except ValueError:
                return True
    return False


def gc_snapshots(client: Any, model: str, entity: str, keep: int = DEFAULT_KEEP) -> list[int]:
    """Delete snapshots older than the live one, keeping the newest ``keep`` complete ones (live included).

    Snapshots newer than the live one belong to loads still running and are left
    alone, as are "loading" snapshots younger than ``STALE_LOADING_S``.
    """
    live = live_snapshot(client, model, entity)
    if live is None:
        return []
    ids = sorted(int(x) for x in client.zrange(keys.snapshots_key(model, entity), 0, -1))
    older = [s for s in ids if s < live]
    states = [_state(client, model, entity, s) for s in older]
    complete = [s for s, st in zip(older, states, strict=True) if st[0] == "complete"]
    kept = set(complete[-(keep - 1) :]) if keep > 1 else set()
    now = time.time()
    doomed = [
        s
        for s, (state, started) in zip(older, states, strict=True)
        if s not in kept and (state != "loading" or now - started > STALE_LOADING_S)
    ]
    for s in doomed:
        _delete_snapshot(client, model, entity, s)
    return doomed


def _state(client: Any, model: str, entity: str, snap: int) -> tuple[str, float]:
    state, started = client.hmget(keys.meta_key(model, entity, snap), ["state", "started_at"])
    return (state or b"gone").decode(), float(started or 0)


def _delete_snapshot(client: Any, model: str, entity: str, snap: int, batch: int = 1000) -> int:
    """UNLINK every key under the snapshot's prefix (SCAN, so the server never blocks), then forget it."""
    pattern = keys.snapshot_prefix(model, entity, snap) + "*"
    pipe = client.pipeline(transaction=False)
    n = 0
    for key in client.scan_iter(match=pattern, count=batch):
        pipe.unlink(key)  # one key per command: keys of a snapshot span cluster slots
        n += 1
        if n % batch == 0:
            pipe.execute()
    pipe.execute()
    client.zrem(keys.snapshots_key(model, entity), str(snap))
    return n
