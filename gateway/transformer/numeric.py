"""Scalers, imputers and element-wise functions as numpy operations.

Each op repeats its estimator's ``transform`` arithmetic in the same order and dtype
(subtract then divide, multiply then add), so results match bit for bit, not just
within a tolerance.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from gateway.transformer.base import Compiled, Shape, Unsupported, check_input, require
from gateway.transformer.codec import Malformed, Reader, Writer
from gateway.transformer.columns import (
    FLOAT,
    NUMERIC,
    Array,
    Column,
    Data,
    Defer,
    Frame,
    to_float,
    to_native,
    to_object,
)

# Element-wise numpy functions known to be pure and to return floats for int input, so a
# pandas column of ints or floats gives the same result as the ndarray the op sees.
UFUNCS = frozenset(
    {
        np.log1p,
        np.log,
        np.log2,
        np.log10,
        np.sqrt,
        np.cbrt,
        np.exp,
        np.exp2,
        np.expm1,
        np.tanh,
        np.arcsinh,
        np.arctan,
    }
)
_UFUNC_NAMES = {f.__name__: f for f in UFUNCS}


class Standardize:
    kind: ClassVar[str] = "standard_scaler"

    def __init__(self, mean: Array | None, scale: Array | None) -> None:
        self.mean = mean
        self.scale = scale

    def __call__(self, x: Data) -> Array:
        out = to_float(x)
        if self.mean is not None:
            out -= self.mean
        if self.scale is not None:
            out /= self.scale
        return out

    def to_ir(self, w: Writer) -> dict[str, Any]:
        return {"mean": w.array(self.mean), "scale": w.array(self.scale)}

    @classmethod
    def from_ir(cls, d: dict[str, Any], r: Reader) -> Standardize:
        return cls(r.array(d["mean"]), r.array(d["scale"]))


def standard_scaler(est: Any, shape: Shape) -> Compiled:
    check_input(est, shape)
    mean = np.asarray(est.mean_, dtype=np.float64) if est.with_mean else None
    scale = np.asarray(est.scale_, dtype=np.float64) if est.with_std else None
    return Compiled(Standardize(mean, scale), shape.matrix())


class MinMax:
    kind: ClassVar[str] = "min_max_scaler"

    def __init__(self, scale: Array, low: Array, clip: tuple[float, float] | None) -> None:
        self.scale = scale
        self.low = low
        self.clip = clip

    def __call__(self, x: Data) -> Array:
        out = to_float(x)
        out *= self.scale
        out += self.low
        if self.clip is not None:
            np.clip(out, np.float64(self.clip[0]), np.float64(self.clip[1]), out=out)
        return out

    def to_ir(self, w: Writer) -> dict[str, Any]:
        clip = None if self.clip is None else [w.value(v) for v in self.clip]
        return {"scale": w.array(self.scale), "low": w.array(self.low), "clip": clip}

    @classmethod
    def from_ir(cls, d: dict[str, Any], r: Reader) -> MinMax:
        scale, low = r.array(d["scale"]), r.array(d["low"])
        if scale is None or low is None:
            raise Malformed("min_max_scaler needs scale and low")
        clip = None if d["clip"] is None else (r.value(d["clip"][0]), r.value(d["clip"][1]))
        return cls(scale, low, clip)


def min_max_scaler(est: Any, shape: Shape) -> Compiled:
    check_input(est, shape)
    clip = (est.feature_range[0], est.feature_range[1]) if est.clip else None
    op = MinMax(np.asarray(est.scale_, np.float64), np.asarray(est.min_, np.float64), clip)
    return Compiled(op, shape.matrix())


class Apply:
    """``FunctionTransformer``: the identity or a known ufunc, on a frame or an array."""

    kind: ClassVar[str] = "function"

    def __init__(self, func: Any, validate: bool) -> None:
        self.func = func
        self.validate = validate

    def __call__(self, x: Data) -> Data:
        if self.validate:
            x = _finite_numeric(x)
        if self.func is None:
            return x
        if isinstance(x, Frame):
            if not x.kinds <= NUMERIC:
                raise Defer  # pandas would keep bools as float16 or fail on objects
            with np.errstate(all="ignore"):
                return Frame(x.names, [Column(FLOAT, self.func(c.values)) for c in x.cols])
        if x.dtype.kind == "O":
            raise Defer
        with np.errstate(all="ignore"):
            return self.func(x)  # type: ignore[no-any-return]

    def to_ir(self, w: Writer) -> dict[str, Any]:
        return {"func": None if self.func is None else self.func.__name__, "validate": self.validate}

    @classmethod
    def from_ir(cls, d: dict[str, Any], r: Reader) -> Apply:
        name = d["func"]
        if name is not None and name not in _UFUNC_NAMES:
            raise Malformed(f"function {name!r} is not a known numpy ufunc")
        return cls(None if name is None else _UFUNC_NAMES[name], bool(d["validate"]))


def _finite_numeric(x: Data) -> Array:
    """``check_array(dtype="numeric")`` with its default refusal of NaN and infinity."""
    if isinstance(x, Frame):
        kinds = x.kinds
        if not kinds <= NUMERIC:
            raise Defer
        out = np.empty((len(x.cols[0].values), len(x.cols)), np.int64 if kinds == {"i"} else np.float64)
        for j, col in enumerate(x.cols):
            out[:, j] = col.values
    elif x.dtype.kind in "iuf":
        out = x
    else:
        raise Defer
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        raise Defer
    return out


def function_transformer(est: Any, shape: Shape) -> Compiled:
    check_input(est, shape)
    func = est.func
    require(func is None or func in UFUNCS, f"FunctionTransformer func={func!r} is not a known numpy ufunc")
    require(not est.kw_args, "FunctionTransformer with kw_args")
    frame = shape.frame and not est.validate
    return Compiled(Apply(func, bool(est.validate)), Shape(shape.names, shape.width, frame))


class Impute:
    """``SimpleImputer`` with ``missing_values=np.nan``, optionally with its missing indicator."""

    kind: ClassVar[str] = "simple_imputer"
    MODES = ("object", "float", "native")

    def __init__(
        self,
        mode: str,
        keep: Array | None,
        fill: Array,
        cast_check: np.dtype[Any] | None,
        indicator: Array | None,
    ) -> None:
        self.mode = mode
        self.keep = keep
        self.fill = fill
        self.cast_check = cast_check
        self.indicator = indicator

    def convert(self, x: Data) -> Array:
        if self.mode == "object":
            return to_object(x)
        if self.mode == "float":
            return to_float(x)
        out = to_native(x)
        if out.dtype.kind == "O":
            raise Defer  # fitted on numbers, given objects
        return out

    def __call__(self, x: Data) -> Array:
        arr = self.convert(x)
        if self.cast_check is not None and not np.can_cast(self.cast_check, arr.dtype, "same_kind"):
            raise Defer  # the reference refuses a fill value of another kind
        mask = _missing(arr)
        kept = arr if self.keep is None else arr[:, self.keep]
        kept_mask = mask if self.keep is None else mask[:, self.keep]
        if kept_mask.any():
            kept[kept_mask] = np.broadcast_to(self.fill, kept.shape)[kept_mask]
        if self.indicator is None:
            return kept
        return np.hstack((kept, mask[:, self.indicator]))

    def to_ir(self, w: Writer) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "keep": w.array(self.keep),
            "fill": w.array(self.fill),
            "cast_check": None if self.cast_check is None else w.dtype(self.cast_check),
            "indicator": w.array(self.indicator),
        }

    @classmethod
    def from_ir(cls, d: dict[str, Any], r: Reader) -> Impute:
        fill = r.array(d["fill"])
        if d["mode"] not in cls.MODES or fill is None:
            raise Malformed(f"simple_imputer mode {d['mode']!r} or its fill values")
        check = None if d["cast_check"] is None else r.dtype(d["cast_check"])
        return cls(d["mode"], r.array(d["keep"]), fill, check, r.array(d["indicator"]))


def _missing(arr: Array) -> Array:
    if arr.dtype.kind == "f":
        return np.isnan(arr)
    if arr.dtype.kind == "O":
        # Only NaN differs from itself: None is not missing to the imputer.
        return np.not_equal(arr, arr)
    return np.zeros(arr.shape, dtype=bool)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def simple_imputer(est: Any, shape: Shape) -> Compiled:
    check_input(est, shape)
    require(_is_nan(est.missing_values), f"SimpleImputer missing_values={est.missing_values!r}")
    strategy = est.strategy
    require(
        strategy in ("mean", "median", "most_frequent", "constant"), f"SimpleImputer strategy={strategy!r}"
    )
    fit_dtype, fill_dtype = _private(est, "_fit_dtype"), _private(est, "_fill_dtype")
    if fit_dtype.kind == "O":
        mode = "object"
    else:
        mode = "native" if strategy in ("most_frequent", "constant") else "float"
    stats = est.statistics_
    keep = None
    if not est.keep_empty_features:
        valid = ~_missing(stats)
        if not valid.all():
            keep = np.flatnonzero(valid)
        stats = stats[valid]
    fill = stats.astype(fill_dtype, copy=False)
    cast_check = fill_dtype if strategy == "constant" else None
    indicator = _indicator(est, shape.width)
    op = Impute(mode, keep, fill, cast_check, indicator)
    kept = list(range(shape.width)) if keep is None else [int(k) for k in keep]
    names = [shape.name(k) for k in kept]
    if indicator is not None:
        names += [f"missingindicator_{shape.name(int(k))}" for k in indicator]
    return Compiled(op, shape.matrix(names, len(names)))


def _indicator(est: Any, width: int) -> Array | None:
    ind = est.indicator_ if est.add_indicator else None
    if ind is None:
        return None
    require(not ind.error_on_new and ind.sparse in ("auto", False), "SimpleImputer indicator settings")
    features = np.asarray(ind.features_, dtype=np.intp)
    if ind.features == "all":
        return np.arange(width)
    return features


def _private(est: Any, attr: str) -> Any:
    value = getattr(est, attr, None)
    if value is None:
        raise Unsupported(f"{type(est).__name__} lacks {attr} (another scikit-learn version?)")
    return value
