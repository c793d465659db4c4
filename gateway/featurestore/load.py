"""Bulk-load one entity table into a new snapshot, then switch the alias to it.

Rows are validated in full before the first write, data goes into a fresh
snapshot namespace with pipelined writes, and only then does a single ``SET``
move the entity's alias. Readers see the old snapshot or the new one, never a
mix; a failed load leaves the live snapshot untouched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import redis

from gateway import keys
from gateway.spec import FeatureView, ModelSpec

ID_COLUMN = "id"


@dataclass
class LoadSummary:
    model: str
    entity: str
    snapshot: int
    rows: int
    keys: int
    bytes: int
    seconds: float


def read_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix in (".csv", ".gz"):
        return pd.read_csv(path, dtype={ID_COLUMN: str}, keep_default_na=False, na_values=[""])
    raise ValueError(f"{path}: expected a .csv or .parquet file")


def vector_matrix(table: pd.DataFrame, view: FeatureView) -> np.ndarray[Any, Any]:
    """A view's vectors from a list column named after it, or columns ``<view>_0 .. <view>_<dim-1>``."""
    dim = view.dim or 0
    if view.name in table.columns:
        mat = np.asarray(table[view.name].tolist(), dtype=np.float32)
    else:
        cols = [f"{view.name}_{i}" for i in range(dim)]
        absent = [c for c in cols if c not in table.columns]
        if absent:
            raise ValueError(f"vector view {view.name!r}: no column {view.name!r} nor {absent[0]!r}")
        mat = table[cols].to_numpy(dtype=np.float32)
    if mat.ndim != 2 or mat.shape[1] != dim:
        raise ValueError(f"vector view {view.name!r}: expected dimension {dim}, got shape {mat.shape}")
    return mat


def next_snapshot(client: Any, model: str, entity: str) -> int:
    ids = client.zrevrange(keys.snapshots_key(model, entity), 0, 0)
    live = client.get(keys.alias_key(model, entity))
    return max([int(x) for x in ids] + [int(live or 0)]) + 1


def load_entity(
    client: redis.Redis | Any, spec: ModelSpec, entity: str, table: pd.DataFrame, chunk: int = 2000
) -> LoadSummary:
    t0 = time.perf_counter()
    views = [v for v in spec.feature_views if v.entity == entity]
    if not views:
        raise ValueError(f"model {spec.name!r} has no feature view for entity {entity!r}")
    if ID_COLUMN not in table.columns:
        raise ValueError(f"table has no {ID_COLUMN!r} column")
    ids = table[ID_COLUMN].astype(str).tolist()
    encoded = {v.name: _encode_view(table, v) for v in views}
    snap = next_snapshot(client, spec.name, entity)
    n_keys = n_bytes = 0
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(ids), chunk):
        for i in range(start, min(start + chunk, len(ids))):
            for v in views:
                key = keys.data_key(spec.name, entity, snap, v.name, ids[i])
                value = encoded[v.name][i]
                if isinstance(value, dict):
                    pipe.hset(key, mapping=value)
                    n_bytes += sum(len(k) + len(str(x)) for k, x in value.items())
                else:
                    pipe.set(key, value)
                    n_bytes += len(value)
                n_keys += 1
        pipe.execute()
    pipe.hset(
        keys.meta_key(spec.name, entity, snap), mapping={"rows": len(ids), "loaded_at": int(time.time())}
    )
    pipe.zadd(keys.snapshots_key(spec.name, entity), {str(snap): snap})
    pipe.set(keys.alias_key(spec.name, entity), snap)
    pipe.execute()
    return LoadSummary(spec.name, entity, snap, len(ids), n_keys, n_bytes, time.perf_counter() - t0)


def _encode_view(table: pd.DataFrame, view: FeatureView) -> list[Any]:
    if view.kind == "vector":
        mat = vector_matrix(table, view).astype("<f4")
        return [row.tobytes() for row in mat]
    absent = [f for f in view.fields if f not in table.columns]
    if absent:
        raise ValueError(f"hash view {view.name!r}: table has no column {absent[0]!r}")
    cols = {f: table[f].tolist() for f in view.fields}
    return [{f: _scalar(cols[f][i]) for f in view.fields} for i in range(len(table))]


def _scalar(v: Any) -> str | float | int:
    if isinstance(v, (np.floating, float)):
        return repr(float(v))
    if isinstance(v, (np.integer, int)):
        return int(v)
    return str(v)
