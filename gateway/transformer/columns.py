"""Request columns as pandas would hand them to scikit-learn, built without pandas.

The reference meaning of a transformer is ``fitted.transform(pandas.DataFrame(columns))``:
pandas infers one dtype per column from the Python values, and estimators then see
``numpy.asarray(column)``. ``infer`` reproduces that inference for the value types a
request can carry (bool, int, float, str, None). The conversions below reproduce what
``check_array`` makes of such a frame for each kind of estimator. Whatever falls outside
the cases modelled here raises ``Defer``: the caller then computes that block with the
reference path for this request, so an unusual input costs speed, never correctness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

# Column kinds: the pandas dtype a list of request values is inferred as.
FLOAT = "f"  # float64; numbers with None or NaN (missing becomes NaN)
INT = "i"  # int64; ints only, all within int64
BOOL = "b"  # bool; bools only
STR = "s"  # pandas str dtype; the estimator sees an object array, missing as NaN
OBJECT = "o"  # object; mixed types, values kept as given (None stays None)
NONE = "n"  # object; every value is None

NUMERIC = frozenset({FLOAT, INT})
_NONE_TYPE = type(None)
_ALLOWED = frozenset({bool, int, float, str, _NONE_TYPE})
_INT64 = (-(2**63), 2**63 - 1)


class Defer(Exception):
    """This request needs the reference path for the current block (an input outside the model)."""


@dataclass(frozen=True, slots=True)
class Column:
    kind: str
    values: Array  # what ``numpy.asarray(series)`` gives for the inferred pandas column


@dataclass(frozen=True, slots=True)
class Frame:
    """What the reference holds as a DataFrame: named columns, each with its own dtype."""

    names: list[str]
    cols: list[Column]

    @property
    def kinds(self) -> set[str]:
        return {c.kind for c in self.cols}


Data = Frame | Array


def infer(values: Sequence[Any]) -> Column:
    """The column pandas builds from ``values`` (a non-empty list of request values)."""
    types = set(map(type, values))
    if not types <= _ALLOWED:
        raise Defer
    if types == {bool}:
        return Column(BOOL, np.array(values, dtype=bool))
    if types <= {int, float, _NONE_TYPE} and types != {_NONE_TYPE}:
        return _number_column(values, types)
    if types == {_NONE_TYPE}:
        return Column(NONE, _objects(values))
    floats_missing = float not in types or all(math.isnan(v) for v in values if type(v) is float)
    if str in types and types <= {str, float, _NONE_TYPE} and floats_missing:
        return Column(STR, _objects([math.nan if v is None else v for v in values]))
    return Column(OBJECT, _objects(values))


def _number_column(values: Sequence[Any], types: set[type]) -> Column:
    if int in types and not all(_INT64[0] <= v <= _INT64[1] for v in values if type(v) is int):
        raise Defer  # pandas turns such columns into uint64 or object
    if types == {int}:
        return Column(INT, np.array(values, dtype=np.int64))
    return Column(FLOAT, np.array(values, dtype=np.float64))


def _objects(values: Sequence[Any]) -> Array:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def as_list(values: Column | Sequence[Any]) -> list[Any]:
    """The Python values of a request column, whether passed as a list or already inferred."""
    if isinstance(values, Column):
        return values.values.tolist()  # type: ignore[no-any-return]
    return list(values)


class ColumnCache:
    """Infers each request column at most once per request, on first use.

    A column may arrive already inferred (a ``Column``, e.g. float fields decoded
    from the feature store, whose kind their dtype fixes): it is used as it is.
    """

    def __init__(self, columns: dict[str, Any]) -> None:
        self.columns = columns
        self.seen: dict[str, Column] = {}

    def frame(self, names: list[str]) -> Frame:
        return Frame(names, [self.column(name) for name in names])

    def column(self, name: str) -> Column:
        col = self.seen.get(name)
        if col is None:
            given = self.columns[name]
            col = self.seen[name] = given if isinstance(given, Column) else infer(given)
        return col


def _no_inf(x: Array) -> Array:
    # check_array(ensure_all_finite="allow-nan") rejects infinities: the reference raises.
    if x.dtype.kind == "f" and np.isinf(x).any():
        raise Defer
    return x


def to_float(x: Data) -> Array:
    """A fresh float64 matrix, as ``check_array(dtype=FLOAT_DTYPES)`` gives scalers and imputers."""
    if isinstance(x, Frame):
        if not x.kinds <= {FLOAT, INT, BOOL, NONE}:
            raise Defer
        out = np.empty((len(x.cols[0].values), len(x.cols)), dtype=np.float64)
        for j, col in enumerate(x.cols):
            out[:, j] = col.values  # bool -> 0/1, None -> NaN
        return _no_inf(out)
    if x.dtype == np.float64:
        return _no_inf(x.copy())
    if x.dtype.kind in "biu":
        return x.astype(np.float64)
    if x.dtype.kind != "O":
        raise Defer  # float32/float16 inputs keep their precision in the reference
    try:
        return _no_inf(x.astype(np.float64))
    except (TypeError, ValueError) as e:
        raise Defer from e


def to_native(x: Data) -> Array:
    """A fresh matrix in the frame's common dtype, as ``check_array(dtype=None)`` gives it."""
    if isinstance(x, Frame):
        kinds = x.kinds
        if kinds <= NUMERIC:
            return _no_inf(_stack(x, np.int64 if kinds == {INT} else np.float64))
        if kinds <= {STR, OBJECT, NONE}:
            return _stack(x, object)
        raise Defer  # bools, or numbers mixed with objects: rare shapes left to the reference
    if x.dtype.kind not in "iufO":
        raise Defer
    return _no_inf(x.copy())


def to_object(x: Data) -> Array:
    """A fresh object matrix, for estimators fitted on object data."""
    if isinstance(x, Frame):
        if not x.kinds <= {STR, OBJECT, NONE}:
            raise Defer
        return _stack(x, object)
    if x.dtype.kind != "O":
        raise Defer
    return x.copy()


def to_matrix(x: Data) -> Array:
    """A block's output as the final ``numpy.hstack`` sees it (``DataFrame.to_numpy`` for a frame)."""
    if not isinstance(x, Frame):
        return x
    kinds = x.kinds
    if kinds <= NUMERIC:
        return _stack(x, np.int64 if kinds == {INT} else np.float64)
    if kinds == {BOOL}:
        return _stack(x, bool)
    raise Defer


def _stack(frame: Frame, dtype: Any) -> Array:
    out = np.empty((len(frame.cols[0].values), len(frame.cols)), dtype=dtype)
    for j, col in enumerate(frame.cols):
        out[:, j] = col.values
    return out


def column_values(x: Data, j: int) -> tuple[str, Array]:
    """Column ``j`` as an encoder sees it: ("numeric", array) or ("object", object array)."""
    if isinstance(x, Frame):
        col = x.cols[j]
        if col.kind in NUMERIC:
            return "numeric", _no_inf(col.values)
        return "object", col.values
    values = x[:, j]
    if values.dtype.kind in "iuf":
        return "numeric", _no_inf(values)
    if values.dtype.kind in "bO":
        return "object", values
    raise Defer
