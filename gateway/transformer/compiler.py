"""Compile a fitted transformer block by block, keeping the reference path as fallback.

A top-level ``ColumnTransformer`` compiles each of its blocks on its own: a block that
cannot be compiled (an unknown class, an unsupported parameter) keeps calling its own
``transform`` while the others run compiled, and the reason goes into ``Program.report``.
Any other top-level transformer is a single block. Blocks built here keep their fitted
estimator, so a request a compiled block does not model is computed by the reference.

This module imports scikit-learn; a stored program is loaded by ``ir.load_program``
without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer

from gateway.errors import ConfigError
from gateway.transformer.base import Unsupported
from gateway.transformer.compose import Part, column_parts, compile_part
from gateway.transformer.program import Block, Program


def compile_transformer(fitted: Any, columns: list[str]) -> Program:
    """Compile ``fitted`` for frames of ``columns``; unsupported blocks fall back, with the reason."""
    if type(fitted) is ColumnTransformer:
        try:
            parts = column_parts(fitted)
        except Unsupported as e:
            return _whole_fallback(fitted, columns, str(e))
        _check_columns(parts, columns)
        blocks = [_block(part) for part in parts]
        report = [
            f"block {b.name!r} ({_describe(b.est)}) runs scikit-learn: {b.reason}" for b in blocks if b.reason
        ]
        return Program(columns, blocks, report, stacked=True, fitted=fitted)
    _check_names(fitted, columns)
    block = _block(Part("*", fitted, columns, None))
    report = [f"transformer ({_describe(fitted)}) runs scikit-learn: {block.reason}"] if block.reason else []
    return Program(columns, [block], report, fitted=fitted)


def reference_program(fitted: Any, columns: list[str]) -> Program:
    """The uncompiled program: every request through ``fitted.transform`` on a DataFrame."""
    return _whole_fallback(fitted, columns, "compilation disabled")


def block_estimators(fitted: Any, stacked: bool) -> dict[str, Any]:
    """The fitted estimator of every block ``compile_transformer`` makes of ``fitted``, by block name."""
    if not stacked:
        return {"*": fitted}
    return {p.name: p.est for p in column_parts(fitted)}


def _block(part: Part) -> Block:
    try:
        compiled = compile_part(part)
    except Unsupported as e:
        return Block(part.name, part.columns, part.weight, None, est=part.est, reason=str(e))
    return Block(part.name, part.columns, part.weight, compiled.op, est=part.est, sparse=compiled.sparse)


def _whole_fallback(fitted: Any, columns: list[str], reason: str) -> Program:
    block = Block("*", columns, None, None, est=fitted, reason=reason)
    report = [f"transformer ({_describe(fitted)}) runs scikit-learn: {reason}"]
    return Program(columns, [block], report, fitted=fitted)


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
