"""The model call behind a circuit breaker: what failed, said as the reason a fallback answers for.

Graph failures that a fallback may answer for (the graph unavailable or failing,
its deadline missed, it saying it is overloaded, or its circuit open) become
:class:`Degrade`; every other error (a request the model refuses, a version the graph
does not serve) passes through unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gateway.errors import DeadlineExceeded, GatewayError, GraphVersionMissing, TooManyRequests
from gateway.logic.predictors import Predictor
from gateway.logic.resilience.breaker import CircuitBreaker
from gateway.logic.versions.loader import ModelVersion

Array = np.ndarray[Any, Any]


class Degrade(Exception):
    """The model could not answer for a reason a fallback may answer for."""

    def __init__(self, reason: str, error: GatewayError) -> None:
        super().__init__(error.msg)
        self.reason = reason
        self.error = error


class CircuitOpen(GatewayError):
    status, code, retry_after = 503, "circuit_open", 1.0


def reason_for(e: GatewayError) -> str | None:
    """The degradation reason for a model failure, or None when a fallback must not answer for it."""
    if isinstance(e, GraphVersionMissing) or (e.status < 500 and not isinstance(e, TooManyRequests)):
        return None
    if isinstance(e, DeadlineExceeded):
        return "graph_deadline"
    if isinstance(e, TooManyRequests):
        return "overload"
    return "graph_unavailable"


class GuardedModel:
    """``predictor.predict`` with a circuit breaker (None: the model runs in-process, no breaker)."""

    def __init__(self, predictor: Predictor, breaker: CircuitBreaker | None) -> None:
        self.predictor = predictor
        self.breaker = breaker

    def predict(self, inputs: dict[str, Array], mv: ModelVersion) -> Array:
        b = self.breaker
        if b is None:
            return self.predictor.predict(inputs, mv)
        if not b.allow():
            raise Degrade("circuit_open", CircuitOpen("the graph's circuit is open: not waiting on it"))
        try:
            raw = self.predictor.predict(inputs, mv)
        except GatewayError as e:
            reason = reason_for(e)
            if reason is None:
                b.success()  # the graph answered (a refusal is an answer): it is alive
                raise
            b.failure()
            raise Degrade(reason, e) from e
        except BaseException:
            b.failure()  # not an answer either; and a half-open probe must not stay taken forever
            raise
        b.success()
        return raw
