"""A fitted transformer compiled block by block, with the reference path kept as fallback.

A top-level ``ColumnTransformer`` compiles each of its blocks on its own: a block that
cannot be compiled (an unknown class, an unsupported parameter) keeps calling its own
``transform`` while the others run compiled, and the reason goes into ``Program.report``.
Any other top-level transformer is a single block. At request time a compiled block that
meets an input outside what it models (``Defer``: an infinity, a number where strings
were fitted, ...) is computed by the reference path for that request only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer

from gateway.errors import ConfigError
from gateway.logic.compiled.base import Op, Shape, Unsupported
from gateway.logic.compiled.columns import ColumnCache, Defer, to_matrix
from gateway.logic.compiled.compose import Part, column_parts, compile_part, compile_step, weigh


def reference_frame(columns: dict[str, Any], selection: Any, n: int) -> Any:
    """What the reference hands a block: a DataFrame of the selected columns (a Series for one name)."""
    import pandas as pd  # the reference path only

    one = isinstance(selection, str)
    names: list[str] = [selection] if one else list(selection)
    frame = pd.DataFrame({c: columns[c] for c in names}, index=range(n))
    return frame[selection] if one else frame


@dataclass
class Block:
    """One unit of work: compiled (``op``), or falling back to ``est.transform``."""

    name: str
    est: Any
    columns: Any
    weight: float | None
    op: Op | None
    sparse: bool = False  # the reference returns a sparse matrix for this block
    deferred: int = field(default=0, compare=False)

    def run(self, cache: ColumnCache, n: int) -> Any:
        if self.op is not None:
            try:
                return weigh(to_matrix(self.op(cache.frame(self.columns))), self.weight)
            except Defer:
                self.deferred += 1
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
        self, fitted: Any, columns: list[str], blocks: list[Block], report: list[str], stacked: bool = False
    ) -> None:
        self.fitted = fitted
        self.columns = columns
        self.blocks = blocks
        self.report = report  # what falls back to scikit-learn, and why
        self.stacked = stacked  # blocks of a ColumnTransformer, set side by side

    @property
    def compiled(self) -> bool:
        """True when no block falls back to scikit-learn."""
        return all(b.op is not None for b in self.blocks)

    @property
    def deferred(self) -> int:
        """Requests (counted per block) that met an input the compiled path leaves to the reference."""
        return sum(b.deferred for b in self.blocks)

    def __call__(self, columns: dict[str, Any], n: int) -> Any:
        if n == 0:  # the reference's own error for an empty frame
            return self.fitted.transform(reference_frame(columns, self.columns, n))
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


def compile_transformer(fitted: Any, columns: list[str]) -> Program:
    """Compile ``fitted`` for frames of ``columns``; unsupported blocks fall back, with the reason."""
    if type(fitted) is ColumnTransformer:
        try:
            parts = column_parts(fitted)
        except Unsupported as e:
            return _whole_fallback(fitted, columns, str(e))
        _check_columns(parts, columns)
        blocks, report = [], []
        for part in parts:
            block, reason = _block(part)
            blocks.append(block)
            if reason:
                report.append(f"block {part.name!r} ({_describe(part.est)}) runs scikit-learn: {reason}")
        return Program(fitted, columns, blocks, report, stacked=True)
    _check_names(fitted, columns)
    block, reason = _block(Part("*", fitted, columns, None))
    report = [f"transformer ({_describe(fitted)}) runs scikit-learn: {reason}"] if reason else []
    return Program(fitted, columns, [block], report)


def reference_program(fitted: Any, columns: list[str]) -> Program:
    """The uncompiled program: every request through ``fitted.transform`` on a DataFrame."""
    return _whole_fallback(fitted, columns, "compilation disabled")


def _block(part: Part) -> tuple[Block, str]:
    try:
        compiled = compile_part(part)
    except Unsupported as e:
        return Block(part.name, part.est, part.columns, part.weight, None), str(e)
    return Block(part.name, part.est, part.columns, part.weight, compiled.op, compiled.sparse), ""


def _whole_fallback(fitted: Any, columns: list[str], reason: str) -> Program:
    block = Block("*", fitted, columns, None, None)
    report = [f"transformer ({_describe(fitted)}) runs scikit-learn: {reason}"]
    return Program(fitted, columns, [block], report)


def _check_columns(parts: list[Part], columns: list[str]) -> None:
    needed = {str(c) for p in parts for c in np.atleast_1d(p.columns)}
    missing = sorted(needed - set(columns))
    if missing:
        raise ConfigError(f"transformer needs columns {missing} that transformer.columns does not list")


def _check_names(fitted: Any, columns: list[str]) -> None:
    names = getattr(fitted, "feature_names_in_", None)
    if names is not None and list(names) != columns:
        raise ConfigError(
            f"transformer was fitted on columns {list(names)}; transformer.columns must list exactly these, "
            f"in this order (it lists {columns})"
        )


def _describe(est: Any) -> str:
    if type(est).__name__ == "Pipeline":
        return " -> ".join(type(s).__name__ for _, s in est.steps)
    return type(est).__name__


__all__ = ["Program", "Shape", "compile_step", "compile_transformer", "reference_program"]
