"""Composite estimators (Pipeline, ColumnTransformer) and the table of compilable classes.

Classes are matched exactly, not by ``isinstance``: a subclass may change ``transform``.
This module imports scikit-learn: it is for compiling, never for loading a stored program.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
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

from gateway.transformer.base import Compiled, Op, Shape, Unsupported, require
from gateway.transformer.classes import CyclicalEncoder
from gateway.transformer.combine import Chain, Columns
from gateway.transformer.cyclical import cyclical_encoder
from gateway.transformer.encoders import one_hot_encoder, ordinal_encoder
from gateway.transformer.numeric import (
    function_transformer,
    min_max_scaler,
    simple_imputer,
    standard_scaler,
)

Builder = Callable[[Any, Shape], Compiled]


def compile_step(est: Any, shape: Shape) -> Compiled:
    """Compile one fitted estimator for the input ``shape``; raise ``Unsupported`` if it has no form."""
    builder = _BUILDERS.get(type(est))
    if builder is None:
        raise Unsupported(f"{type(est).__name__} has no compiled form")
    return builder(est, shape)


def pipeline(est: Any, shape: Shape) -> Compiled:
    config = getattr(est, "_sklearn_output_config", {}).get("transform", "default")
    require(config == "default", f"Pipeline has set_output(transform={config!r})")
    ops: list[Op] = []
    sparse = False
    for _, step in est.steps:
        if step is None or isinstance(step, str):
            require(step in (None, "passthrough"), f"Pipeline step {step!r}")
            continue
        require(not sparse, "a Pipeline step after a sparse output")
        compiled = compile_step(step, shape)
        ops.append(compiled.op)
        shape, sparse = compiled.out, compiled.sparse
    return Compiled(Chain(ops), shape, sparse)


@dataclass(frozen=True)
class Part:
    """One block of a ColumnTransformer as its ``transform`` iterates them."""

    name: str
    est: Any
    columns: Any  # list of column names, or one name (the block then sees a 1-D column)
    weight: float | None


def column_parts(ct: Any) -> list[Part]:
    require(hasattr(ct, "feature_names_in_"), "ColumnTransformer was fitted without column names")
    config = getattr(ct, "_sklearn_output_config", {}).get("transform", "default")
    require(config == "default", f"ColumnTransformer has set_output(transform={config!r})")
    try:
        # The very iteration ColumnTransformer.transform runs: fitted blocks, drops and
        # empty selections skipped, columns as labels, weights.
        items = ct._iter(fitted=True, column_as_labels=True, skip_drop=True, skip_empty_columns=True)
        return [Part(name, est, columns, weight) for name, est, columns, weight in items]
    except (AttributeError, TypeError) as e:
        raise Unsupported(f"ColumnTransformer internals differ (another scikit-learn version?): {e}") from e


def compile_part(part: Part) -> Compiled:
    require(not isinstance(part.columns, str), f"block {part.name!r} selects a single 1-D column")
    names = [str(c) for c in part.columns]
    return compile_step(part.est, Shape(names, len(names), frame=True))


def column_transformer(ct: Any, shape: Shape) -> Compiled:
    require(shape.frame and shape.names is not None, "ColumnTransformer receives an array, not a DataFrame")
    parts = column_parts(ct)
    assert shape.names is not None
    missing = {c for p in parts for c in np.atleast_1d(p.columns)} - set(shape.names)
    require(not missing, f"ColumnTransformer needs columns it does not receive: {sorted(missing)}")
    compiled = [(p, compile_part(p)) for p in parts]
    width = sum(c.out.width for _, c in compiled)
    op = Columns([([str(c) for c in p.columns], p.weight, c.op) for p, c in compiled])
    return Compiled(op, shape.matrix([], width), ct.sparse_output_)


_BUILDERS: dict[type, Builder] = {
    StandardScaler: standard_scaler,
    MinMaxScaler: min_max_scaler,
    FunctionTransformer: function_transformer,
    SimpleImputer: simple_imputer,
    OneHotEncoder: one_hot_encoder,
    OrdinalEncoder: ordinal_encoder,
    Pipeline: pipeline,
    ColumnTransformer: column_transformer,
    CyclicalEncoder: cyclical_encoder,
}
