"""``/ready``: can this worker answer ``/get_score`` correctly right now?

Ready means: the feature store answers, every loaded model version's transformer
is in memory, the backend serves exactly that version (the graph reports it
AVAILABLE), and one warm-up prediction pinned to it has passed. Liveness
(``/health``) is separate and cheap: a not-ready worker is alive.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from gateway.errors import GatewayError
from gateway.logic.orchestrator import ModelVersion, Scorer

log = logging.getLogger("gateway.logic")


def warmup_inputs(mv: ModelVersion) -> dict[str, np.ndarray[Any, Any]] | None:
    """One all-zero row per graph input, shaped from the manifest; None if it does not say."""
    shapes = mv.manifest.get("graph_inputs")
    if not isinstance(shapes, dict) or not shapes:
        return None
    return {alias: np.zeros((1, int(dims[-1])), dtype=np.float32) for alias, dims in shapes.items()}


class Readiness:
    def __init__(self, scorer: Scorer, warmup: bool) -> None:
        self.scorer = scorer
        self.warmup = warmup
        self._warm: set[int] = set()
        self._lock = threading.Lock()

    def check(self) -> tuple[bool, dict[str, Any], list[str]]:
        """(ready, per-check details, problems) — problems are what /ready lists on 503."""
        problems: list[str] = []
        details: dict[str, Any] = {}
        s = self.scorer
        if s.features.views:
            ok = s.features.ping()
            details["feature_store"] = "ok" if ok else "unreachable"
            if not ok:
                problems.append("feature store (Redis) is unreachable")
        for version, mv in sorted(s.versions.items()):
            details[f"version_{version}"] = self._version(version, mv, problems)
        return not problems, details, problems

    def _version(self, version: int, mv: ModelVersion, problems: list[str]) -> dict[str, Any]:
        info: dict[str, Any] = {"transformer": "loaded"}
        source = getattr(mv.transform, "source", None)
        if source is not None:  # "artifact": the compiled file alone; "pickle": unpickled and compiled here
            info["transformer_source"] = source
        report = getattr(mv.transform, "report", None)
        if report:
            info["transformer_fallbacks"] = list(report)
        reason = self.scorer.predictor.check(version)
        if reason is not None:
            problems.append(f"model version {version}: {reason}")
            info["backend"] = reason
            return info
        info["backend"] = "serving"
        if self.warmup:
            info["warmup"] = self._warm_up(version, mv, problems)
        return info

    def _warm_up(self, version: int, mv: ModelVersion, problems: list[str]) -> str:
        with self._lock:
            if version in self._warm:
                return "passed"
            inputs = warmup_inputs(mv)
            if inputs is None:
                return "skipped (manifest has no graph_inputs)"
            try:
                self.scorer.predictor.predict(inputs, version)
            except GatewayError as e:
                problems.append(f"model version {version}: warm-up prediction failed: {e.msg}")
                return f"failed: {e.msg}"
            self._warm.add(version)
            log.info("model %s version %d: warm-up prediction passed", self.scorer.spec.name, version)
            return "passed"
