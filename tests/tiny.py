"""The tiny checked-in model served in-process: no TensorFlow, no training, no servers.

``tiny_app()`` is the logic service's real Flask app (``create_app``) around a real
``Scorer`` with the checked-in version 1 (its compiled transformer), whose graph is
replaced by :class:`TinyPredictor`: a fixed logistic layer in numpy. Redis is never
touched (the model has no feature views).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask

from gateway.errors import GatewayError
from gateway.logic.assembly import build_scorer
from gateway.logic.graph_client import GraphVersion
from gateway.logic.orchestrator import Scorer
from gateway.logic.versions.loader import ModelVersion
from gateway.logic.web.app import create_app
from gateway.settings import Settings
from tests.support import REPO
from tests.testdata import make_tiny

ROOT = REPO / "tests" / "testdata" / "models"
WEIGHTS = make_tiny.WEIGHTS
EXAMPLE = {
    "data": [
        {"customer_id": "c1", "amount": 1200.0, "term": 24, "purpose": "car"},
        {"customer_id": "c2", "amount": 50.5, "term": 6, "purpose": "home", "urgent": True},
    ]
}


class TinyPredictor:
    """The graph stand-in: ``x @ WEIGHTS + version - 1`` (raw; the spec's sigmoid is post-processing),
    so each version answers differently.

    ``fail`` makes the next predictions raise that error, as the graph client would;
    ``graph`` (version -> state), when set, is what the "graph" reports serving.
    """

    def __init__(self) -> None:
        self.fail: Exception | None = None
        self.calls = 0
        self.graph: dict[int, str] | None = None
        self.graph_errors: dict[int, str] = {}

    def predict(self, inputs: dict[str, np.ndarray[Any, Any]], mv: ModelVersion) -> np.ndarray[Any, Any]:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return np.asarray(inputs["x"], dtype=np.float64) @ WEIGHTS + (mv.version - 1)

    def served(self) -> dict[int, GraphVersion] | None:
        if isinstance(self.fail, GatewayError):
            raise self.fail
        if self.graph is None:
            return None
        return {v: GraphVersion(state, self.graph_errors.get(v, "")) for v, state in self.graph.items()}


def expected_scores(transformed: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(1.0 / (1.0 + np.exp(-(transformed @ WEIGHTS))))


def tiny_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "model": "tiny",
        "models_root": ROOT,
        "redis_url": "redis://127.0.0.1:9/0",
        "access_log": False,
        "metrics_flush_ms": 0,
    }
    return Settings(**{**base, **overrides})


def tiny_scorer(settings: Settings, predictor: TinyPredictor) -> Scorer:
    """The real worker assembly with the in-process predictor; versions polled by the test (no thread)."""
    return build_scorer(settings, predictor=predictor, start=False)


def tiny_app(predictor: TinyPredictor | None = None, **overrides: Any) -> Flask:
    settings = tiny_settings(**overrides)
    return create_app(settings, scorer=tiny_scorer(settings, predictor or TinyPredictor()))


def tiny_root(
    tmp: Path,
    versions: dict[str, Any] | None = None,
    labels: dict[str, int] | None = None,
    **blocks: Any,
) -> Path:
    """A models root holding the tiny model (version 1), its spec's ``versions`` block (and any
    other top-level ``blocks``) replaced, and a model config file (``<root>/tiny.config``) with ``labels``."""
    import yaml

    from gateway.wire import model_config

    root = tmp / "models"
    (root / "tiny").mkdir(parents=True)
    raw = yaml.safe_load((ROOT / "tiny" / "model.yaml").read_text())
    if versions is not None:
        raw["versions"] = versions
    raw.update(blocks)
    (root / "tiny" / "model.yaml").write_text(yaml.safe_dump(raw))
    shutil.copytree(ROOT / "tiny" / "1", root / "tiny" / "1")
    entry = model_config.ModelEntry("tiny", str(root / "tiny"), labels=dict(labels or {}))
    model_config.write(root / "tiny.config", [entry])
    return root


def publish_copy(root: Path, version: int, source: int = 1) -> Path:
    """Publish a copy of an existing version under a new number the way packaging does: staged, renamed."""
    staging = root / "tiny" / f".tmp-{version}"
    shutil.copytree(root / "tiny" / str(source), staging)
    target = root / "tiny" / str(version)
    staging.rename(target)
    return target
