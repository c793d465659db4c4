"""The tiny checked-in model served in-process: no TensorFlow, no training, no servers.

``tiny_app()`` is the logic service's real Flask app (``create_app``) around a real
``Scorer`` with the checked-in version 1 (its compiled transformer), whose graph is
replaced by :class:`TinyPredictor`: a fixed logistic layer in numpy. Redis is never
touched (the model has no feature views).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import redis
from flask import Flask

from gateway.errors import GatewayError
from gateway.featurestore.reader import FeatureReader
from gateway.logic.assembly import load_version
from gateway.logic.orchestrator import Scorer
from gateway.logic.web.app import create_app
from gateway.settings import Settings
from gateway.spec import load_spec
from tests.support import REPO

ROOT = REPO / "tests" / "testdata" / "models"
WEIGHTS = np.array([0.8, -0.5, 0.3, -0.2, 0.1])
EXAMPLE = {
    "data": [
        {"customer_id": "c1", "amount": 1200.0, "term": 24, "purpose": "car"},
        {"customer_id": "c2", "amount": 50.5, "term": 6, "purpose": "home", "urgent": True},
    ]
}


class TinyPredictor:
    """The graph stand-in: ``x @ WEIGHTS`` (raw; the spec's sigmoid is post-processing).

    ``fail`` makes the next predictions raise that error, as the graph client would.
    """

    def __init__(self) -> None:
        self.fail: GatewayError | None = None
        self.calls = 0

    def predict(self, inputs: dict[str, np.ndarray[Any, Any]], version: int) -> np.ndarray[Any, Any]:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return np.asarray(inputs["x"], dtype=np.float64) @ WEIGHTS

    def check(self, version: int) -> str | None:
        return None if self.fail is None else self.fail.msg


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
    spec = load_spec(Path(settings.models_root) / settings.model / "model.yaml")
    mv = load_version(spec, settings)
    reader = FeatureReader(spec, redis.Redis.from_url(settings.redis_url))
    return Scorer(spec, reader, {mv.version: mv}, predictor)


def tiny_app(predictor: TinyPredictor | None = None, **overrides: Any) -> Flask:
    settings = tiny_settings(**overrides)
    return create_app(settings, scorer=tiny_scorer(settings, predictor or TinyPredictor()))
