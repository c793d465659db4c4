"""Hypothesis strategies: random fitted transformers and random request columns.

Columns mirror what the service hands the transformer: floats with None for optional
fields, an int field, string categories with None, a bool field. Transformers are random
combinations of the steps the compiler supports, fitted on random frames built from
Python lists exactly as a request would build them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)

from gateway.transformer.classes import CyclicalEncoder

NUMBERS = ["x1", "x2", "k"]  # k is an int field: scaled as a number or encoded as a category
CATEGORIES = ["c1", "c2", "flag"]
COLUMNS = NUMBERS + CATEGORIES
C1 = ["a", "b", "c", "d", "e"]
C2 = ["u", "v"]
FUNCS = [None, np.log1p, np.sqrt, np.expm1, np.log, np.arctan]


def fit_columns(seed: int, n: int = 40) -> dict[str, list[Any]]:
    """A training frame as Python lists (pandas infers dtypes exactly as for requests)."""
    rng = np.random.default_rng(seed)
    miss = rng.uniform(0, 0.3, 4)
    miss[3] *= rng.random() < 0.5  # k: an int column, or a float one with missing values
    never = rng.random() < 0.2  # x1 never observed: imputers drop or keep it

    def holes(values: list[Any], rate: float) -> list[Any]:
        return [None if rng.random() < rate else v for v in values]

    return {
        "x1": [math.nan] * n if never else holes([round(float(v), 2) for v in rng.normal(0, 10, n)], miss[0]),
        "x2": holes([round(float(v), 1) for v in rng.lognormal(3, 1, n)], miss[1]),
        "k": holes([int(v) for v in rng.integers(0, 5, n)], miss[3]),
        "c1": holes([str(v) for v in rng.choice(C1, n, p=[0.4, 0.3, 0.2, 0.07, 0.03])], miss[2]),
        "c2": [str(v) for v in rng.choice(C2, n)],
        "flag": [bool(v) for v in rng.random(n) < 0.5],
    }


_NUMBER = {
    "x1": st.one_of(
        st.floats(-40, 40, allow_nan=False), st.none(), st.integers(-3, 3), st.sampled_from([0.0, 1e6, -1e6])
    ),
    "x2": st.one_of(st.floats(0, 2e3, allow_nan=False), st.none(), st.sampled_from([-1.0, -2.5, 0.0, 800.0])),
    "k": st.sampled_from([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, -1, 6, None, None]),
    "c1": st.sampled_from([*C1, *C1, "zz", None]),
    "c2": st.sampled_from([*C2, *C2, *C2, "ww", None]),
    "flag": st.sampled_from([True, False, True, False, None]),
}


@st.composite
def requests(draw: st.DrawFn, columns: list[str]) -> tuple[dict[str, list[Any]], int]:
    """Request columns: n rows, each column a list of Python values (None for missing)."""
    n = draw(st.integers(1, 5))
    out = {}
    for c in columns:
        mode = draw(st.sampled_from(["mixed"] * 3 + ["missing", "ints", "ints"]))
        if mode == "missing":  # an optional field absent from every record
            out[c] = [None] * n
        elif mode == "ints" and c in NUMBERS:  # numbers that pandas keeps as int64
            out[c] = draw(st.lists(st.integers(-1, 6), min_size=n, max_size=n))
        else:
            out[c] = draw(st.lists(_NUMBER[c], min_size=n, max_size=n))
    return out, n


@st.composite
def numeric_step(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["standard", "minmax", "impute", "func", "func", "cyclical"]))
    if kind == "cyclical":
        return CyclicalEncoder(period=draw(st.sampled_from([24.0, 7, 12.5])))
    if kind == "standard":
        return StandardScaler(with_mean=draw(st.booleans()), with_std=draw(st.booleans()))
    if kind == "minmax":
        low = draw(st.sampled_from([0.0, -1.0, 2.0]))
        high = low + draw(st.sampled_from([1.0, 3.5]))
        return MinMaxScaler(feature_range=(low, high), clip=draw(st.booleans()))
    if kind == "impute":
        strategy = draw(st.sampled_from(["mean", "median", "most_frequent", "constant"]))
        return SimpleImputer(
            strategy=strategy,
            fill_value=draw(st.sampled_from([None, -7.0])) if strategy == "constant" else None,
            add_indicator=draw(st.booleans()),
            keep_empty_features=draw(st.booleans()),
        )
    validate = draw(st.sampled_from([False] * 3 + [True]))
    return FunctionTransformer(draw(st.sampled_from(FUNCS)), validate=validate)


@st.composite
def numeric_block(draw: st.DrawFn) -> Any:
    steps = draw(st.lists(numeric_step(), min_size=1, max_size=3))
    return steps[0] if len(steps) == 1 else Pipeline([(f"s{i}", s) for i, s in enumerate(steps)])


@st.composite
def encoder(draw: st.DrawFn, columns: list[str], fit: dict[str, list[Any]]) -> Any:
    rare = [{}, {"min_frequency": 3}, {"max_categories": 3}, {"min_frequency": 0.1}]
    infrequent = draw(st.sampled_from(rare))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    if draw(st.booleans()):
        drop = draw(st.sampled_from([None, "first", "if_binary", "explicit"]))
        if drop == "explicit":
            drop = [draw(st.sampled_from(sorted({v for v in fit[c] if v is not None}))) for c in columns]
        return OneHotEncoder(
            handle_unknown=draw(st.sampled_from(["ignore", "error", "infrequent_if_exist", "warn"])),
            drop=drop,
            sparse_output=draw(st.booleans()),
            dtype=dtype,
            **infrequent,
        )
    use_value = draw(st.sampled_from([True, True, False]))
    return OrdinalEncoder(
        handle_unknown="use_encoded_value" if use_value else "error",
        unknown_value=draw(st.sampled_from([-1, np.nan])) if use_value else None,
        encoded_missing_value=draw(st.sampled_from([np.nan, -2])),
        dtype=dtype,
        **infrequent,
    )


@st.composite
def categorical_block(draw: st.DrawFn, fit: dict[str, list[Any]]) -> tuple[Any, list[str]]:
    strings = draw(st.booleans())
    pool = ["c1", "c2"] if strings else ["c1", "c2", "k", "flag"]
    columns = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=len(pool), unique=True))
    enc = draw(encoder(columns, fit))
    if strings and draw(st.booleans()):
        strategy = draw(st.sampled_from(["most_frequent", "constant"]))
        imputer = SimpleImputer(strategy=strategy, fill_value="zz" if strategy == "constant" else None)
        return Pipeline([("impute", imputer), ("encode", enc)]), columns
    return enc, columns


@st.composite
def column_transformer(draw: st.DrawFn, fit: dict[str, list[Any]], nested: bool = False) -> Any:
    blocks: list[tuple[str, Any, list[str]]] = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["numeric"] * 2 + ["categorical"] * 2 + ["codes", "passthrough", "drop"]))
        if kind == "categorical":
            est, columns = draw(categorical_block(fit))
        elif kind == "codes":  # numbers as categories: the numeric matching path
            columns = ["k"]
            est = draw(encoder(columns, fit))
        else:
            subset = st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=3, unique=True)
            columns = draw(st.one_of(subset, st.just(["k"])))  # k alone: an int64 frame
            est = draw(numeric_block()) if kind == "numeric" else kind
        blocks.append((f"{kind}{i}", est, columns))
    weights = {blocks[0][0]: 2.0} if draw(st.booleans()) else None
    used = {c for _, est, columns in blocks if est != "drop" for c in columns}
    # Passing strings through makes the final float cast fail on both paths: rarely useful.
    remainder = draw(st.sampled_from(["drop", "passthrough"])) if {"c1", "c2"} <= used else "drop"
    return ColumnTransformer(
        blocks,
        remainder=remainder,
        sparse_threshold=0.0 if nested else draw(st.sampled_from([0.3, 1.0])),
        transformer_weights=weights,
    )


@st.composite
def transformers(draw: st.DrawFn) -> tuple[Any, list[str], dict[str, list[Any]]]:
    """(unfitted transformer, its input columns, training columns)."""
    fit = fit_columns(draw(st.integers(0, 2**16)))
    shape = draw(st.sampled_from(["columns"] * 8 + ["nested", "pipeline"]))
    if shape == "pipeline":
        return draw(numeric_block()), NUMBERS, fit
    ct = draw(column_transformer(fit, nested=shape == "nested"))
    if shape == "nested":
        return Pipeline([("columns", ct), ("scale", StandardScaler())]), COLUMNS, fit
    return ct, COLUMNS, fit
