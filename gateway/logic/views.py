"""HTTP views: parse the request, hand it to the Scorer, shape the response. Nothing else."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request

from gateway.errors import MalformedJSON, PayloadTooLarge, UnsupportedMediaType
from gateway.logic.orchestrator import Scorer

bp = Blueprint("logic", __name__)


def _scorer() -> Scorer:
    return current_app.extensions["gateway.scorer"]  # type: ignore[no-any-return]


def json_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json", headers=headers)


def read_json_body() -> Any:
    """The request body as JSON, or a 4xx naming what is wrong with it."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got {request.mimetype or 'none'!r}"
        )
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body of {request.content_length} bytes exceeds the {limit}-byte limit")
    raw = request.get_data(cache=False)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise MalformedJSON(f"body is not valid JSON: {e}") from e


@bp.post("/get_score")
def get_score() -> Response:
    scored = _scorer().score(read_json_body())
    timing = ", ".join(f"{k};dur={v * 1000:.3f}" for k, v in scored.timings.items())
    body = {"msg": "Successful!", "code": 200, "data": scored.data, "model": scored.model}
    return json_response(body, headers={"Server-Timing": timing})


@bp.get("/health")
def health() -> Response:
    return json_response({"health": "status", "code": 200})
