"""``gateway.transformer.classes.CyclicalEncoder`` as numpy operations.

Its ``transform`` is ``numpy.asarray(x, dtype=float64)`` (no ``check_array``: infinities
and NaN pass through) followed by ``sin``/``cos`` of ``2 * pi * x / period``. The op below
repeats that expression term by term, so results match bit for bit.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from gateway.transformer.base import Compiled, Shape, Unsupported, check_input
from gateway.transformer.codec import Reader, Writer
from gateway.transformer.columns import BOOL, FLOAT, INT, NONE, Array, Data, Defer, Frame


class Cyclical:
    kind: ClassVar[str] = "cyclical_encoder"

    def __init__(self, period: float) -> None:
        self.period = period

    def __call__(self, x: Data) -> Array:
        values = _floats(x)
        with np.errstate(all="ignore"):
            phase = 2.0 * np.pi * values / self.period
            return np.concatenate([np.sin(phase), np.cos(phase)], axis=1)

    def to_ir(self, w: Writer) -> dict[str, Any]:
        return {"period": w.value(self.period)}

    @classmethod
    def from_ir(cls, d: dict[str, Any], r: Reader) -> Cyclical:
        return cls(r.value(d["period"]))


def _floats(x: Data) -> Array:
    """``numpy.asarray(x, dtype=float64)`` for the frames and arrays modelled here."""
    if isinstance(x, Frame):
        if not x.kinds <= {FLOAT, INT, BOOL, NONE}:
            raise Defer  # strings (numeric ones convert in the reference) and mixed objects
        out = np.empty((len(x.cols[0].values), len(x.cols)), dtype=np.float64)
        for j, col in enumerate(x.cols):
            out[:, j] = col.values  # bool -> 0/1, None -> NaN
        return out
    if x.dtype.kind not in "biuf":
        raise Defer
    return x.astype(np.float64)


def cyclical_encoder(est: Any, shape: Shape) -> Compiled:
    check_input(est, shape)
    period = est.period
    if isinstance(period, bool) or not isinstance(period, int | float):
        raise Unsupported(f"CyclicalEncoder period={period!r}")
    names = [f"{shape.name(j)}_sin" for j in range(shape.width)]
    names += [f"{shape.name(j)}_cos" for j in range(shape.width)]
    return Compiled(Cyclical(period), shape.matrix(names, 2 * shape.width))
