"""One exception hierarchy for the whole gateway.

Every error carries its HTTP status and a stable machine-readable code; one
handler in the logic service renders them as
``{"msg": ..., "code": <status>, "error": <code>, "details": [...]}``.
Graph failures map to HTTP with TensorFlow Serving's own table (``gateway.wire.status``),
so the logic tier reports them exactly as the graph's REST API would.
"""

from __future__ import annotations

from typing import Any

import grpc

from gateway.wire.status import http_status


class GatewayError(Exception):
    """Base class: an error with an HTTP status and a stable code."""

    status: int = 500
    code: str = "internal"

    retry_after: float | None = None  # seconds; sent as Retry-After when set

    def __init__(
        self,
        msg: str,
        *,
        details: list[Any] | None = None,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details or []
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if retry_after is not None:
            self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        return {"msg": self.msg, "code": self.status, "error": self.code, "details": self.details}


class BadRequest(GatewayError):
    status, code = 400, "bad_request"


class MalformedJSON(BadRequest):
    code = "malformed_json"


class InvalidField(BadRequest):
    """A request field is missing, mistyped or out of range; ``field`` names it."""

    code = "invalid_field"

    def __init__(self, field: str, problem: str, **kwargs: Any) -> None:
        super().__init__(f"{field}: {problem}", **kwargs)
        self.field = field
        self.details = self.details or [{"field": field, "problem": problem}]


class PayloadTooLarge(GatewayError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(GatewayError):
    status, code = 415, "unsupported_media_type"


class Unauthorized(GatewayError):
    status, code = 401, "unauthorized"


class Forbidden(GatewayError):
    status, code = 403, "forbidden"


class Conflict(GatewayError):
    status, code = 409, "conflict"


class NotFound(GatewayError):
    status, code = 404, "not_found"


class UnknownVersion(NotFound):
    code = "unknown_version"


class MethodNotAllowed(GatewayError):
    status, code = 405, "method_not_allowed"


class TooManyRequests(GatewayError):
    status, code = 429, "resource_exhausted"


class Unavailable(GatewayError):
    status, code = 503, "unavailable"
    retry_after = 1.0


class VersionUnavailable(Unavailable):
    """The version a request needs is not (or no longer) served; retrying is safe."""

    code = "version_unavailable"


class GraphVersionMissing(VersionUnavailable):
    """The graph answered NOT_FOUND for the version a Predict was pinned to (the tiers disagree)."""

    def __init__(self, version: int, message: str) -> None:
        super().__init__(f"graph service does not serve version {version}: {message}")
        self.version = version


class DeadlineExceeded(GatewayError):
    status, code = 504, "deadline_exceeded"


class GraphError(GatewayError):
    """The graph service answered with a non-OK gRPC status."""

    code = "graph_error"


class FeatureStoreError(Unavailable):
    code = "feature_store_unavailable"


class ConfigError(Exception):
    """A spec, settings or artifact problem found at start-up (names file and field)."""


class ArtifactError(ConfigError):
    """A model artifact failed verification (hash, environment, layout)."""


def from_grpc(code: grpc.StatusCode, message: str) -> GatewayError:
    """Turn a graph-side gRPC failure into the gateway error a client should see."""
    status = http_status(code)
    name = code.name.lower()
    by_status: dict[int, type[GatewayError]] = {
        404: NotFound,
        429: TooManyRequests,
        503: Unavailable,
        504: DeadlineExceeded,
    }
    cls = by_status.get(status, GraphError)
    return cls(f"graph service: {message}", status=status, code=f"graph_{name}")
