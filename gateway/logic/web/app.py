"""Flask application factory for the logic service.

``create_app()`` is what gunicorn calls in every worker (after the fork), so
the Redis pool and the gRPC channel are per worker. Tests pass their own
settings or a ready ``Scorer``.
"""

from __future__ import annotations

import logging
import sys

from flask import Flask, Response, g
from werkzeug.exceptions import HTTPException

from gateway.errors import GatewayError
from gateway.logic.orchestrator import Scorer
from gateway.logic.web import admin, metric_buffer, openapi, telemetry, views
from gateway.logic.web.metrics import Metrics
from gateway.logic.web.readiness import Readiness
from gateway.logic.web.state import AppState
from gateway.logic.web.views import json_response
from gateway.settings import Settings

log = logging.getLogger("gateway.logic")


def error_response(e: GatewayError) -> Response:
    g.error_code = e.code
    headers = [("Retry-After", f"{max(1, round(e.retry_after))}")] if e.retry_after is not None else None
    return json_response(e.to_dict(), e.status, headers)


def _http_error(e: HTTPException) -> Response:
    code = (e.name or "error").lower().replace(" ", "_")
    status = e.code or 500
    g.error_code = code
    return json_response(
        {"msg": e.description or e.name, "code": status, "error": code, "details": []}, status
    )


def _unexpected(e: Exception) -> Response:
    # Logged with its traceback for us; the client sees only a stable envelope.
    log.exception("unhandled error")
    g.error_code = "internal"
    return json_response({"msg": "internal error", "code": 500, "error": "internal", "details": []}, 500)


def configure_logging(settings: Settings) -> logging.Logger | None:
    """Gateway logs to stderr; the access log is bare JSON lines (see ``telemetry``)."""
    root = logging.getLogger("gateway")
    root.setLevel(settings.log_level.upper())
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    return telemetry.access_log(settings.access_log)


def create_app(settings: Settings | None = None, scorer: Scorer | None = None) -> Flask:
    settings = settings or Settings()
    access = configure_logging(settings)
    metric_buffer.configure(settings.metrics_flush_ms)
    metrics = Metrics()
    if scorer is None:
        from gateway.logic.assembly import build_scorer

        scorer = build_scorer(settings, events=metrics)
    else:
        scorer.events = metrics
    metrics.watch(scorer)
    app = Flask("gateway.logic")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    AppState(
        settings=settings,
        scorer=scorer,
        metrics=metrics,
        readiness=Readiness(scorer),
        openapi=openapi.build(scorer.spec),
    ).install(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(admin.bp)
    app.register_error_handler(GatewayError, error_response)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    telemetry.install(app, metrics, scorer.spec.name, access)
    return app
