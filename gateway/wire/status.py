"""gRPC status <-> HTTP status: TensorFlow Serving's table (``model_servers/http_server.cc``).

The one copy both tiers use: the graph server's REST API answers with it, and the logic
service reports a graph failure with the status the graph's REST API would have given.
"""

from __future__ import annotations

import grpc

Code = grpc.StatusCode

GRPC_TO_HTTP: dict[grpc.StatusCode, int] = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status TF-Serving's REST API answers for a gRPC status (500 for anything unknown)."""
    return GRPC_TO_HTTP.get(code, 500)
