"""Stage 3: apply the model version's fitted feature transformer.

The transformer is unpickled only after its sha256 matches the manifest and the
manifest's library versions match this process (see ``gateway.artifacts``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from gateway import artifacts
from gateway.spec import TransformerSpec

log = logging.getLogger("gateway.logic")


class Transform:
    """Columns in, a dense float matrix out, in the spec's column order."""

    def __init__(self, fitted: Any, spec: TransformerSpec) -> None:
        self.fitted = fitted
        self.columns = list(spec.columns)
        self.dtype = np.dtype(spec.output_dtype)

    def __call__(self, columns: dict[str, Any], n: int) -> np.ndarray[Any, Any]:
        import pandas as pd  # only this fallback path needs pandas

        frame = pd.DataFrame({c: columns[c] for c in self.columns}, index=range(n))
        out = self.fitted.transform(frame)
        if hasattr(out, "toarray"):  # a sparse matrix from a one-hot encoder
            out = out.toarray()
        return np.ascontiguousarray(out, dtype=self.dtype)


def load_transform(
    vdir: Path, manifest: dict[str, Any], spec: TransformerSpec, allow_drift: list[str]
) -> Transform:
    fitted = artifacts.load_verified_pickle(vdir, spec.file, manifest, allow_drift)
    return Transform(fitted, spec)
