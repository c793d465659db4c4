"""``/ready``: can this worker give full answers right now? And the version status endpoint.

Ready means: the worker is not shutting down, the feature store answers (for a model with
feature views), and a version is available for requests that name none: its
transformer loaded, the graph reporting it AVAILABLE, warm-up requests through the full
path passed. Liveness (``/health``) is separate and cheap: a not-ready worker is alive.
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
        if s.features.views:
            ok = s.features.ping()
            details["feature_store"] = "ok" if ok else "unreachable"
            if not ok:
                problems.append("feature store (Redis) is unreachable")
        routing = s.versions.routing
        details["default_version"] = routing.default
        details["labels"] = routing.labels
        details["versions"] = {str(slot.version): version_detail(slot) for slot in s.versions.status()}
        if routing.default is None:
            waiting = [f"version {v}: {d.get('error') or d['state']}" for v, d in details["versions"].items()]
            problems.append(f"no version is available ({'; '.join(waiting) or 'none published'})")
        if s.versions.backend_problem:
            details["backend"] = s.versions.backend_problem
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
