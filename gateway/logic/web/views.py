"""HTTP views: parse the request, hand it to the Scorer, shape the response. Nothing else."""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np
import orjson
from flask import Blueprint, Request, Response, current_app, g, request

from gateway.errors import MalformedJSON, NotFound, PayloadTooLarge, UnsupportedMediaType
from gateway.logic.orchestrator import Scored
from gateway.logic.web.auth import authorize
from gateway.logic.web.readiness import model_status
from gateway.logic.web.state import app_state

bp = Blueprint("logic", __name__)


def json_response(
    body: dict[str, Any], status: int = 200, headers: list[tuple[str, str]] | None = None
) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json", headers=headers)


def read_json_body() -> Any:
    """The request body as JSON, or a 4xx naming what is wrong with it."""
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    # The common exact header skips werkzeug's header parsing; anything else gets the full check.
    if req.environ.get("CONTENT_TYPE") != "application/json" and req.mimetype != "application/json":
        raise UnsupportedMediaType(f"Content-Type must be application/json, got {req.mimetype or 'none'!r}")
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    length = req.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"body of {length} bytes exceeds the {limit}-byte limit")
    raw = req.get_data(cache=False)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise MalformedJSON(f"body is not valid JSON: {e}") from e


@bp.post("/get_score")
def get_score() -> Response:
    state = app_state()
    explain = EXPLAIN_HEADER in request.headers
    if explain:  # feature values are data about customers: the admin token guards them
        authorize()
    scored = state.scorer.score(read_json_body())
    g.scored = scored
    spec = state.scorer.spec
    state.metrics.record_scored(spec.name, scored, spec.postprocess.score_field)
    timing = ", ".join([f"{k};dur={v * 1000:.3f}" for k, v in scored.timings.items()])
    body: dict[str, Any] = {"msg": "Successful!", "code": 200, "data": scored.data, "model": scored.model}
    d = scored.degraded
    if d is not None:  # not from the full path: say so, and why
        body.update(degraded=True, reason=d.reason, source=d.source, detail=d.detail)
        if d.also:
            body["also"] = list(d.also)
    if explain:
        body["features"] = explained(scored)
    return json_response(body, headers=[("Server-Timing", timing)])


EXPLAIN_HEADER = "X-Gateway-Explain"


def explained(scored: Scored) -> dict[str, Any]:
    """The feature values the answer was computed from, per request row (``gateway verify`` reads
    them): hash fields, vectors, rows whose entity the store lacked (defaults used), snapshots."""
    feats = scored.features
    if feats is None:
        return {}
    return {
        "columns": {name: values.tolist() for name, values in feats.columns.items()},
        "vectors": {view: m.tolist() for view, m in feats.vectors.items()},
        "defaulted": {view: np.flatnonzero(mask).tolist() for view, mask in feats.defaulted.items()},
        "snapshots": feats.snapshots,
        "unavailable": feats.unavailable,
    }


@bp.get("/health")
def health() -> Response:
    """Liveness: the process answers. Cheap on purpose; no dependency is touched."""
    return json_response({"health": "status", "code": 200})


@bp.get("/ready")
def ready() -> Response:
    ok, details, problems = app_state().readiness.check()
    if ok:
        return json_response({"msg": "ready", "code": 200, "checks": details})
    return json_response(
        {"msg": "not ready", "code": 503, "error": "not_ready", "details": problems, "checks": details}, 503
    )


@bp.get("/v1/models/<model>")
@bp.get("/v1/models/<model>/versions/<int:version>")
def version_status(model: str, version: int | None = None) -> Response:
    """TF-Serving's model status (GetModelStatus over REST) for this worker's versions."""
    scorer = app_state().scorer
    status = model_status(scorer, version) if model == scorer.spec.name else None
    if status is None:
        what = (
            f"version {version} of model {model}" if version is not None else f"any versions of model {model}"
        )
        raise NotFound(f"Could not find {what}")
    return json_response(status)


@bp.get("/metrics")
def metrics() -> Response:
    return app_state().metrics.exposition()


@bp.get("/openapi.json")
def openapi() -> Response:
    return json_response(app_state().openapi)


@bp.get("/docs")
def docs() -> Response:
    page = resources.files("gateway.logic.web").joinpath("static/docs.html").read_text()
    return Response(page, mimetype="text/html")
