"""Errors raised inside the graph server, each with the gRPC status TF-Serving uses."""

from __future__ import annotations

import grpc

Code = grpc.StatusCode


class ServingError(Exception):
    """A request-level failure carrying its gRPC status code."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


def invalid(message: str) -> ServingError:
    return ServingError(Code.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(Code.NOT_FOUND, message)


def unavailable(message: str) -> ServingError:
    return ServingError(Code.UNAVAILABLE, message)


def failed_precondition(message: str) -> ServingError:
    return ServingError(Code.FAILED_PRECONDITION, message)


def unimplemented(message: str) -> ServingError:
    return ServingError(Code.UNIMPLEMENTED, message)


def internal(message: str) -> ServingError:
    return ServingError(Code.INTERNAL, message)


# gRPC status -> HTTP status, TF-Serving's table for its REST API (http_server.cc).
_HTTP_OF = {
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
    return _HTTP_OF.get(code, 500)


def code_number(code: grpc.StatusCode) -> int:
    """The ``tensorflow.error.Code`` number of a gRPC status (the two enumerations agree)."""
    return int(code.value[0])


def code_of_number(number: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return Code.UNKNOWN
