"""Flask application factory for the logic service.

``create_app()`` is what gunicorn calls in every worker (after the fork), so
the Redis pool and the gRPC channel are per worker. Tests pass their own
settings or a ready ``Scorer``.
"""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from gateway.errors import GatewayError
from gateway.logic import views
from gateway.logic.orchestrator import Scorer
from gateway.logic.views import json_response
from gateway.settings import Settings

log = logging.getLogger("gateway.logic")


def error_response(e: GatewayError) -> Response:
    return json_response(e.to_dict(), e.status)


def _http_error(e: HTTPException) -> Response:
    code = (e.name or "error").lower().replace(" ", "_")
    status = e.code or 500
    return json_response(
        {"msg": e.description or e.name, "code": status, "error": code, "details": []}, status
    )


def _unexpected(e: Exception) -> Response:
    # Logged with its traceback for us; the client sees only a stable envelope.
    log.exception("unhandled error")
    return json_response({"msg": "internal error", "code": 500, "error": "internal", "details": []}, 500)


def create_app(settings: Settings | None = None, scorer: Scorer | None = None) -> Flask:
    settings = settings or Settings()
    logging.getLogger("gateway").setLevel(settings.log_level.upper())
    if scorer is None:
        from gateway.logic.assembly import build_scorer

        scorer = build_scorer(settings)
    app = Flask("gateway.logic")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["gateway.scorer"] = scorer
    app.extensions["gateway.settings"] = settings
    app.register_blueprint(views.bp)
    app.register_error_handler(GatewayError, error_response)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app
