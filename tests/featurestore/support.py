"""A small feature-store spec and tables for the loader tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gateway.spec import ModelSpec, parse_spec

DIM = 4


def small_spec(name: str = "fs", **profile: Any) -> ModelSpec:
    """One entity ``user`` with a hash view (float, int, string; ``profile`` adds view keys) and a
    4-dim vector view."""
    return parse_spec(
        {
            "name": name,
            "backend": "sklearn",
            "estimator": {},
            "request": {"fields": [{"name": "uid", "type": "string"}]},
            "entities": {"user": {"field": "uid", "max_length": 16}},
            "feature_views": [
                {
                    "name": "profile",
                    "entity": "user",
                    "fields": {
                        "age": {"dtype": "float", "default": -1.0},
                        "visits": {"dtype": "int", "default": 0},
                        "tier": {"dtype": "string", "default": "none"},
                    },
                    **profile,
                },
                {"name": "emb", "entity": "user", "kind": "vector", "dim": DIM},
            ],
            "transformer": {"columns": ["age"]},
        }
    )


def users(n: int, age: float = 30.0, start: int = 0, seed: int = 0) -> pd.DataFrame:
    """``n`` users with ids u<start>.., a constant ``age`` (a marker readers can check) and vectors."""
    rng = np.random.default_rng(seed)
    ids = np.arange(start, start + n)
    frame = pd.DataFrame(
        {
            "id": [f"u{i}" for i in ids],
            "age": np.full(n, age),
            "visits": (ids % 50).astype(np.int64),
            "tier": np.where(ids % 3 == 0, "gold", "basic"),
        }
    )
    vecs = rng.normal(size=(n, DIM)).astype(np.float32)
    for k in range(DIM):
        frame[f"emb_{k}"] = vecs[:, k]
    return frame


def vectors_of(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    return frame[[f"emb_{k}" for k in range(DIM)]].to_numpy(np.float32)
