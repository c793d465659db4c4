"""A compiled transformer as it runs per request: blocks of numpy operations, stacked.

A ``Program`` comes from compiling a fitted transformer (``compiler``), where every
block keeps its fitted estimator, or from loading a stored program (``ir``), where a
fully compiled program has none. A block without an op falls back to its estimator's
``transform``. A compiled block that meets an input outside what it models (``Defer``:
an infinity, an integer beyond 64 bits, a string where numbers were fitted, ...) hands
that request to its estimator when it has one; without one the request is refused with
``UnsupportedValue``, a 400 naming the column, so an answer is never approximate.

This module imports neither scikit-learn nor pandas (the reference path imports them
when it runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gateway.errors import InvalidField
from gateway.transformer.base import Op
from gateway.transformer.columns import (
    BOOL,
    FLOAT,
    INT,
    NONE,
    OBJECT,
    STR,
    ColumnCache,
    Defer,
    as_list,
    to_matrix,
)
from gateway.transformer.combine import weigh

_INT64 = (-(2**63), 2**63 - 1)


class UnsupportedValue(InvalidField):
    """A value the compiled program does not model, met where no reference transformer is loaded."""

    code = "unsupported_value"


def reference_frame(columns: dict[str, Any], selection: Any, n: int) -> Any:
    """What the reference hands a block: a DataFrame of the selected columns (a Series for one name)."""
    import pandas as pd  # the reference path only

    one = isinstance(selection, str)
    names: list[str] = [selection] if one else list(selection)
    frame = pd.DataFrame({c: as_list(columns[c]) for c in names}, index=range(n))
    return frame[selection] if one else frame


@dataclass
class Block:
    """One unit of work: compiled (``op``), or falling back to ``est.transform`` (``reason`` says why)."""

    name: str
    columns: Any  # list of column names, or one name (the block then sees a 1-D column)
    weight: Any
    op: Op | None
    est: Any = None  # the fitted block: fallback, and the reference for deferred requests
    sparse: bool = False  # the reference returns a sparse matrix for this block
    reason: str = ""
    deferred: int = field(default=0, compare=False)

    def run(self, cache: ColumnCache, n: int) -> Any:
        if self.op is not None:
            try:
                return weigh(to_matrix(self.op(cache.frame(self.columns))), self.weight)
            except Defer as e:
                self.deferred += 1
                if self.est is None:
                    raise refusal(cache, self.columns) from e
        return weigh(self.est.transform(reference_frame(cache.columns, self.columns, n)), self.weight)

    def as_reference(self, out: Any) -> Any:
        """``out`` in the container the reference would have produced (for its own stacking)."""
        if self.sparse and isinstance(out, np.ndarray):
            from scipy import sparse

            return sparse.csr_matrix(out)
        return out


class Program:
    """``program(columns, n)`` equals ``fitted.transform(pandas.DataFrame(columns))``."""

    def __init__(
        self,
        columns: list[str],
        blocks: list[Block],
        report: list[str],
        *,
        stacked: bool = False,
        fitted: Any = None,
    ) -> None:
        self.columns = columns
        self.blocks = blocks
        self.report = report  # what falls back to scikit-learn, and why
        self.stacked = stacked  # blocks of a ColumnTransformer, set side by side
        self.fitted = fitted  # None: no reference path (a stored program loaded on its own)

    @property
    def compiled(self) -> bool:
        """True when no block falls back to scikit-learn."""
        return all(b.op is not None for b in self.blocks)

    @property
    def deferred(self) -> int:
        """Block computations (per request) that met an input the compiled ops do not model."""
        return sum(b.deferred for b in self.blocks)

    def __call__(self, columns: dict[str, Any], n: int) -> Any:
        if n == 0:
            if self.fitted is None:
                raise ValueError("Found array with 0 sample(s); the transform needs at least one row")
            return self.fitted.transform(reference_frame(columns, self.columns, n))  # its own error
        cache = ColumnCache(columns)
        outs = [b.run(cache, n) for b in self.blocks]
        if not self.stacked:
            return outs[0]
        if not outs:
            return np.zeros((n, 0))
        if all(isinstance(o, np.ndarray) for o in outs):
            return np.hstack(outs)
        # A fallback returned a sparse matrix or a DataFrame: stack as the reference does.
        outs = [b.as_reference(o) for b, o in zip(self.blocks, outs, strict=True)]
        return self.fitted._hstack(outs, n_samples=n)


def refusal(cache: ColumnCache, selection: Any) -> UnsupportedValue:
    """The 400 for a request a compiled block cannot compute, naming the column to blame."""
    names = [selection] if isinstance(selection, str) else [str(c) for c in selection]
    for name in names:
        problem = _odd_value(as_list(cache.columns[name]))
        if problem:
            return UnsupportedValue(name, f"{problem} cannot be transformed by this model")
    kinds = {name: _kind(cache, name) for name in names}
    for name, kind in kinds.items():
        if kind == NONE:
            return UnsupportedValue(name, "is missing in every record, which this model cannot transform")
    shown = ", ".join(f"{name} ({kind})" for name, kind in kinds.items())
    return UnsupportedValue(
        ", ".join(names), f"values of these kinds ({shown}) are outside what this model's transformer takes"
    )


def _odd_value(values: list[Any]) -> str:
    for v in values:
        if type(v) is float and math.isinf(v):
            return "an infinite number"
        if type(v) is int and not _INT64[0] <= v <= _INT64[1]:
            return "an integer beyond 64 bits"
        if v is not None and type(v) not in (bool, int, float, str):
            return f"a value of type {type(v).__name__}"
    return ""


_KIND_NAMES = {FLOAT: "numbers", INT: "integers", BOOL: "true/false", STR: "strings", OBJECT: "mixed"}


def _kind(cache: ColumnCache, name: str) -> str:
    try:
        kind = cache.column(name).kind
    except Defer:
        return "unreadable"
    return NONE if kind == NONE else _KIND_NAMES.get(kind, kind)
