"""The scikit-learn backend's part of a version: the estimator pickle, scored as the logic service scores it."""

from __future__ import annotations

import io
import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from gateway import artifacts
from gateway.saver.package import ESTIMATOR_INPUT, Sample
from gateway.spec import EstimatorSpec, SklearnModelSpec

log = logging.getLogger("gateway.saver")
COMPILED_TOLERANCE = 1e-9  # same formulas on the same float64 inputs: equal but for summation order


def estimator_scores(est: Any, spec: EstimatorSpec, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The estimator's output as the logic service returns it (one float per row)."""
    out = np.asarray(getattr(est, spec.method)(x), dtype=np.float64)
    return out[:, spec.column] if out.ndim == 2 else out


class EstimatorPayload:
    """A fitted estimator, pickled into the version and scored from that pickle."""

    def __init__(self, spec: SklearnModelSpec, estimator: Any) -> None:
        self.spec = spec
        self.data = pickle.dumps(estimator, protocol=5)
        self.name = type(estimator).__name__

    def write(self, staging: Path) -> None:
        (staging / self.spec.estimator.file).write_bytes(self.data)

    def problems(self, staging: Path, sample: Sample) -> list[str]:
        est = self.spec.estimator
        try:
            loaded = artifacts.safe_unpickle(io.BytesIO(self.data))
        except Exception as e:
            return [f"{est.file}: cannot be loaded by the logic service: {e}"]
        if not hasattr(loaded, est.method):
            return [f"{est.file}: {self.name} has no method {est.method!r}"]
        return []

    def scores(self, staging: Path, sample: Sample) -> np.ndarray[Any, Any]:
        loaded = artifacts.safe_unpickle(io.BytesIO((staging / self.spec.estimator.file).read_bytes()))
        x = np.asarray(sample.inputs[ESTIMATOR_INPUT], dtype=np.float64)
        return estimator_scores(loaded, self.spec.estimator, x)

    def finish(self, staging: Path, sample: Sample) -> dict[str, Any]:
        est = self.spec.estimator
        return {
            "estimator": {
                "class": self.name,
                "file": est.file,
                "method": est.method,
                "compiled": self._compile(staging, sample),
            }
        }

    def _compile(self, staging: Path, sample: Sample) -> dict[str, Any]:
        """Write ``estimator.compiled.npz`` when the compiled program reproduces the pickle on the
        held-out rows; the manifest entry says which file serves, and why the pickle if it does."""
        from gateway.estimator.compiler import NotCompilable, compile_estimator
        from gateway.estimator.program import COMPILED_FILE, FORMAT, CompiledEstimator

        spec = self.spec.estimator
        x = np.asarray(sample.inputs[ESTIMATOR_INPUT], dtype=np.float64)
        loaded = artifacts.safe_unpickle(io.BytesIO(self.data))
        try:
            program = compile_estimator(loaded, x.shape[1])
        except NotCompilable as e:
            log.info("%s: served from its pickle: %s", spec.file, e)
            return {"file": None, "reason": str(e)}
        if not program.has(spec.method):
            return {"file": None, "reason": f"the compiled {self.name} has no {spec.method}"}
        program.save(staging / COMPILED_FILE)
        reread = CompiledEstimator.load(staging / COMPILED_FILE)
        gap = float(np.max(np.abs(estimator_scores(reread, spec, x) - estimator_scores(loaded, spec, x))))
        if not gap <= COMPILED_TOLERANCE:
            (staging / COMPILED_FILE).unlink()
            log.warning(
                "%s: compiled form differs by %.3g on the held-out rows: served from the pickle",
                spec.file,
                gap,
            )
            return {"file": None, "reason": f"the compiled form differs by {gap:.3g} on the held-out rows"}
        return {"file": COMPILED_FILE, "format": FORMAT, "verified": {"rows": len(x), "max_abs_diff": gap}}
