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


def code_number(code: grpc.StatusCode) -> int:
    """The ``tensorflow.error.Code`` number of a gRPC status (the two enumerations agree)."""
    return int(code.value[0])


def code_of_number(number: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return Code.UNKNOWN
