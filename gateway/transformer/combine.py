"""Steps that combine other steps: a pipeline's chain, a nested ColumnTransformer's blocks."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from gateway.transformer.base import Op
from gateway.transformer.codec import Reader, Writer
from gateway.transformer.columns import Array, Data, Defer, Frame, to_matrix


def weigh(out: Any, weight: Any) -> Any:
    """A block's output times its ``transformer_weights`` entry (None: unweighted)."""
    return out if weight is None else out * weight


class Chain:
    """``Pipeline``: each step's output is the next one's input."""

    kind: ClassVar[str] = "chain"

    def __init__(self, ops: list[Op]) -> None:
        self.ops = ops

    def __call__(self, x: Data) -> Data:
        for op in self.ops:
            x = op(x)
        return x

    def to_ir(self, w: Writer) -> dict[str, Any]:
        return {"steps": [w.op(op) for op in self.ops]}

    @classmethod
    def from_ir(cls, d: dict[str, Any], r: Reader) -> Chain:
        return cls([r.op(s) for s in r.listed(d, "steps")])


class Columns:
    """A ColumnTransformer inside a Pipeline: every block compiled, outputs side by side.

    ``parts`` holds, per block, the column names it selects, its weight and its op.
    """

    kind: ClassVar[str] = "columns"

    def __init__(self, parts: list[tuple[list[str], Any, Op]]) -> None:
        self.parts = parts

    def __call__(self, x: Data) -> Array:
        if not isinstance(x, Frame):
            raise Defer
        where = {name: j for j, name in enumerate(x.names)}
        outs = []
        for names, weight, op in self.parts:
            cols = [x.cols[where[c]] for c in names]
            outs.append(weigh(to_matrix(op(Frame(list(names), cols))), weight))
        if not outs:
            return np.zeros((len(x.cols[0].values), 0))
        return np.hstack(outs)

    def to_ir(self, w: Writer) -> dict[str, Any]:
        parts = [
            {"columns": list(names), "weight": w.value(wt), "step": w.op(op)} for names, wt, op in self.parts
        ]
        return {"parts": parts}

    @classmethod
    def from_ir(cls, d: dict[str, Any], r: Reader) -> Columns:
        return cls(
            [(r.names(p, "columns"), r.value(p["weight"]), r.op(p["step"])) for p in r.listed(d, "parts")]
        )
