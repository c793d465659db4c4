"""``/ready``: can this worker answer right now? And the version status endpoint.

Ready means the worker is not shutting down and can answer requests naming no version:
a version is available (its transformer loaded, the graph reporting it AVAILABLE,
warm-up requests through the full path passed) or the spec's fallback can answer without
one; and every feature view whose policy is a 503 (``on_unavailable: error``) can be
read (Redis answers, the entity has a live snapshot). ``full`` says whether answers come
from the full path now; a degraded worker stays ready on purpose: taking every replica
out of rotation because a dependency they share is down would turn degraded answers into
no answers. Liveness (``/health``) is separate and cheap: a not-ready worker is alive.
"""

from __future__ import annotations

import threading
from typing import Any

from gateway.logic.orchestrator import Scorer
from gateway.logic.versions.manager import Slot, State

# Set when the worker was told to stop: readiness turns false before the listener closes.
DRAINING = threading.Event()


class Readiness:
    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer

    def check(self) -> tuple[bool, dict[str, Any], list[str]]:
        """(ready, per-check details, problems) — problems are what /ready lists on 503."""
        problems: list[str] = []
        details: dict[str, Any] = {}
        s = self.scorer
        if DRAINING.is_set():
            problems.append("shutting down")
        degraded: list[str] = []
        if s.features.views:
            store = s.features.problems()
            problems += store
            if s.features.backoff.active() or not s.features.ping():
                details["feature_store"] = "unreachable"
                degraded.append("feature_store_unavailable")
            else:
                details["feature_store"] = "ok"
        routing = s.versions.routing
        details["default_version"] = routing.default
        details["labels"] = routing.labels
        details["versions"] = {str(slot.version): version_detail(slot) for slot in s.versions.status()}
        without_version = s.fallback is not None and any(x != "light_model" for x in s.fallback.spec.chain)
        if routing.default is None:
            waiting = [f"version {v}: {d.get('error') or d['state']}" for v, d in details["versions"].items()]
            why = f"no version is available ({'; '.join(waiting) or 'none published'})"
            (degraded if without_version else problems).append(why)
        if s.breaker is not None:
            details["circuit"] = s.breaker.state.name.lower()
            if s.breaker.state.name != "CLOSED":
                if s.fallback is None:
                    problems.append("the graph's circuit is open and the model has no fallback")
                degraded.append("circuit_open")
        if s.versions.backend_problem:
            details["backend"] = s.versions.backend_problem
        details["full"] = not degraded
        if degraded:
            details["degraded"] = degraded
        if s.versions.observed.problem:
            details["model_config_file"] = s.versions.observed.problem
        return not problems, details, problems


def version_detail(slot: Slot) -> dict[str, Any]:
    info: dict[str, Any] = {"state": slot.state.name}
    if slot.error:
        info["error"] = slot.error
    mv = slot.mv
    if mv is not None:
        info["transformer_source"] = mv.transform.source  # "artifact": the compiled file alone
        if mv.transform.report:
            info["transformer_fallbacks"] = list(mv.transform.report)
    return info


def model_status(scorer: Scorer, version: int | None = None) -> dict[str, Any] | None:
    """TF-Serving's GetModelStatus answer (``GET /v1/models/<name>``), for this worker's versions.

    Beside ``model_version_status`` (TF-Serving's shape), ``default_version`` and ``labels``
    say how requests are routed. None when ``version`` is given and unknown.
    """
    slots = scorer.versions.status()
    if version is not None:
        slots = [s for s in slots if s.version == version]
        if not slots:
            return None
    routing = scorer.versions.routing
    return {
        "model_version_status": [
            {
                "version": str(s.version),
                "state": s.state.name,
                "status": {
                    "error_code": "OK" if s.state != State.END or not s.error else "UNKNOWN",
                    "error_message": s.error if s.state == State.END else "",
                },
            }
            for s in slots
        ],
        "default_version": routing.default,
        "labels": routing.labels,
    }
