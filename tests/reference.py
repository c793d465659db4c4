"""The offline answer for the risk model: pandas + a version's pickled transformer + its SavedModel.

Features come from the demo table training wrote (not from Redis), so a test comparing
with it checks the whole online path.
"""

from __future__ import annotations

import pickle
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gateway.featurestore.table import read_table
from gateway.spec import load_spec


@cache
def _customers(demo: Path) -> pd.DataFrame:
    return read_table(demo).set_index("id")


@cache
def _version(vdir: Path) -> tuple[Any, Any]:
    import tensorflow as tf

    with (vdir / "transformer.pkl").open("rb") as f:
        transformer = pickle.load(f)
    return transformer, tf.saved_model.load(str(vdir)).signatures["score"]


def risk_scores(
    spec_path: Path, vdir: Path, demo: Path, records: list[dict[str, Any]]
) -> np.ndarray[Any, Any]:
    import tensorflow as tf

    transformer, fn = _version(vdir)
    x = np.asarray(transformer.transform(risk_frame(spec_path, demo, records)), dtype=np.float32)
    return np.asarray(fn(features=tf.constant(x))["probability"].numpy()).reshape(-1)


def risk_frame(spec_path: Path, demo: Path, records: list[dict[str, Any]]) -> pd.DataFrame:
    """The transformer's input rows for ``records``: request fields and the demo table's features."""
    spec = load_spec(spec_path)
    customers = _customers(demo)
    view = spec.view("profile")
    rows = []
    for rec in records:
        row = {f.name: rec.get(f.name, f.default) for f in spec.request.fields}
        cid = rec["customer_id"]
        for name, field in view.fields.items():
            row[name] = customers.loc[cid, name] if cid in customers.index else field.default
        rows.append(row)
    return pd.DataFrame(rows)[spec.transformer.columns]


def risk_light_scores(
    spec_path: Path, vdir: Path, demo: Path, records: list[dict[str, Any]]
) -> np.ndarray[Any, Any]:
    """The offline fallback: the version's pickled transformer and its light model's coefficients."""
    import json

    with (vdir / "transformer.pkl").open("rb") as f:
        transformer = pickle.load(f)
    light = json.loads((vdir / "light_model.json").read_text())
    x = np.asarray(transformer.transform(risk_frame(spec_path, demo, records)), dtype=np.float32).astype(
        np.float64
    )
    z = x @ np.asarray(light["coef"]) + light["intercept"]
    return np.asarray(1 / (1 + np.exp(-z))) if light["link"] == "logistic" else z
