"""Stage 3: apply the model version's fitted feature transformer.

The transformer is unpickled only after its sha256 matches the manifest and the
manifest's library versions match this process (see ``gateway.artifacts``). At load it
is compiled into numpy operations (``gateway.logic.compiled``); blocks that cannot be
compiled keep running through scikit-learn on a pandas DataFrame, and ``Transform.report``
says which and why. Either way the result equals
``fitted.transform(pandas.DataFrame(columns))``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from gateway import artifacts
from gateway.logic.compiled import Program, compile_transformer, reference_program
from gateway.spec import TransformerSpec

log = logging.getLogger("gateway.logic")


class Transform:
    """Columns in, a dense float matrix out, in the spec's column order.

    ``columns`` maps every name of ``spec.columns`` to a list of ``n`` request values.
    With ``compile=False`` every call takes the reference path (pandas + scikit-learn).
    """

    def __init__(self, fitted: Any, spec: TransformerSpec, compile: bool = True) -> None:
        self.fitted = fitted
        self.columns = list(spec.columns)
        self.dtype = np.dtype(spec.output_dtype)
        build = compile_transformer if compile else reference_program
        self.program: Program = build(fitted, self.columns)

    @property
    def report(self) -> list[str]:
        """What runs through scikit-learn instead of compiled code, and why (empty when all compiled)."""
        return list(self.program.report)

    @property
    def compiled(self) -> bool:
        return self.program.compiled

    @property
    def deferred(self) -> int:
        """Block computations handed to the reference path because of an unusual input."""
        return self.program.deferred

    def __call__(self, columns: dict[str, Any], n: int) -> np.ndarray[Any, Any]:
        return self._finish(self.program(columns, n))

    def reference(self, columns: dict[str, Any], n: int) -> np.ndarray[Any, Any]:
        """The reference path: ``fitted.transform`` on a pandas DataFrame (benchmarks, checks)."""
        import pandas as pd

        frame = pd.DataFrame({c: columns[c] for c in self.columns}, index=range(n))
        return self._finish(self.fitted.transform(frame))

    def _finish(self, out: Any) -> np.ndarray[Any, Any]:
        if hasattr(out, "toarray"):  # a sparse matrix from a one-hot encoder
            out = out.toarray()
        return np.ascontiguousarray(out, dtype=self.dtype)


def load_transform(
    vdir: Path, manifest: dict[str, Any], spec: TransformerSpec, allow_drift: list[str]
) -> Transform:
    fitted = artifacts.load_verified_pickle(vdir, spec.file, manifest, allow_drift)
    transform = Transform(fitted, spec)
    where = vdir / spec.file
    for line in transform.report:
        log.warning("%s: %s", where, line)
    if transform.compiled:
        log.info("%s: compiled to numpy operations", where)
    return transform
