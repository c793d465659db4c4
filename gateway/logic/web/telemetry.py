"""Request ids and the JSON access log: the request hooks of the logic app.

Every response carries ``X-Request-ID`` (the caller's, if it sent a sane one, else a new
uuid4 in 32 hex digits); every request but health, readiness and metrics scrapes gets one
JSON line in the ``gateway.access`` log (stderr), and its count and latency in the metrics.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from flask import Flask, Request, Response, g, request

from gateway.logic.orchestrator import Scored
from gateway.logic.web.metrics import Metrics

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUIET = frozenset({"logic.metrics", "logic.health", "logic.ready"})
ACCESS = logging.getLogger("gateway.access")


@dataclass(slots=True)
class RequestInfo:
    request_id: str
    started: float


def access_log(enabled: bool) -> logging.Logger | None:
    """The access log: bare JSON lines on stderr, apart from the gateway's other logs."""
    if not enabled:
        return None
    if not ACCESS.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        ACCESS.addHandler(handler)
        ACCESS.propagate = False
        ACCESS.setLevel(logging.INFO)
    return ACCESS


def install(app: Flask, metrics: Metrics, model: str, log: logging.Logger | None) -> None:
    """Request ids on every response, metrics and one JSON access-log line per request (if ``log``)."""

    @app.before_request
    def _start() -> None:
        given = request.headers.get("X-Request-ID")
        rid = given if given is not None and _REQUEST_ID.match(given) else uuid.uuid4().hex
        g.info = RequestInfo(rid, time.perf_counter())

    @app.after_request
    def _finish(resp: Response) -> Response:
        info: RequestInfo | None = g.get("info")
        if info is None:  # a request that failed before our hook ran
            return resp
        elapsed = time.perf_counter() - info.started
        resp.headers["X-Request-ID"] = info.request_id
        endpoint = request.endpoint or "unknown"
        scored: Scored | None = g.get("scored")
        metrics.request_done(model, scored, endpoint, resp.status_code, elapsed)
        if log is not None and endpoint not in _QUIET:
            log.info(
                access_line(request, info, resp.status_code, elapsed, model, scored, g.get("error_code"))
            )
        return resp


def access_line(
    req: Request,
    info: RequestInfo,
    status: int,
    elapsed: float,
    model: str,
    scored: Scored | None,
    error: str | None,
) -> str:
    entry: dict[str, Any] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "request_id": info.request_id,
        "method": req.method,
        "path": req.path,
        "status": status,
        "ms": round(elapsed * 1000, 3),
        "model": model,
        "remote": req.remote_addr,
    }
    if scored is not None:
        entry["version"] = scored.model["version"]
        entry["items"] = len(scored.data)
        entry["stages_ms"] = {k: round(v * 1000, 3) for k, v in scored.timings.items()}
        if any(scored.missing.values()):
            entry["missing"] = scored.missing
        if scored.degraded is not None:
            entry["degraded"] = scored.degraded.reason
    if error:
        entry["error"] = error
    return orjson.dumps(entry).decode()
