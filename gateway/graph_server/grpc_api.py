"""gRPC services: ``tensorflow.serving.PredictionService`` and ``ModelService``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from gateway.graph_server.errors import ServingError, invalid
from gateway.graph_server.manager import ModelManager
from gateway.protos import (
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from gateway.tensors import TensorError, to_numpy, to_proto

log = logging.getLogger("gateway.graph_server")
R = TypeVar("R")


def spec_target(spec: Any) -> tuple[str, int | None, str | None]:
    """(name, version, label) from a ModelSpec; version and label are exclusive."""
    if not spec.name:
        raise invalid("Missing ModelSpec")
    choice = spec.WhichOneof("version_choice")
    if choice == "version":
        return spec.name, int(spec.version.value), None
    if choice == "version_label":
        return spec.name, None, spec.version_label
    return spec.name, None, None


def echo_spec(out: Any, name: str, version: int, signature: str) -> None:
    out.name = name
    out.version.value = version
    out.signature_name = signature


def _guard(fn: Callable[..., R]) -> Callable[..., R]:
    """Turn ServingError into the matching gRPC status; anything else is INTERNAL."""

    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> R:
        try:
            return fn(self, request, context)
        except ServingError as e:
            context.abort(e.code, e.message)
        except TensorError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except Exception as e:  # never leak a traceback to the client
            log.exception("internal error in %s", fn.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")
        raise AssertionError("unreachable")

    wrapper.__name__ = fn.__name__
    return wrapper


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):  # type: ignore[misc]
    def __init__(self, manager: ModelManager, runner: Any) -> None:
        self.manager = manager
        self.runner = runner

    @_guard
    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        name, version, label = spec_target(request.model_spec)
        inputs = {alias: to_numpy(t) for alias, t in request.inputs.items()}
        with self.manager.lease(name, version, label) as servable:
            sig_name, outputs = self.runner.predict(
                servable, request.model_spec.signature_name, inputs, list(request.output_filter)
            )
            response = predict_pb2.PredictResponse()
            echo_spec(response.model_spec, name, servable.version, sig_name)
        for alias, value in outputs.items():
            response.outputs[alias].CopyFrom(to_proto(value))
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):  # type: ignore[misc]
    def __init__(self, manager: ModelManager) -> None:
        self.manager = manager

    @_guard
    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        name, version, label = spec_target(request.model_spec)
        if label:
            version = self.manager.resolve(name, None, label).version
        response = get_model_status_pb2.GetModelStatusResponse()
        for vs in self.manager.status(name, version):
            st = response.model_version_status.add()
            st.version = vs.version
            st.state = int(vs.state)
            st.status.error_code = _error_code(vs.error_code)
            st.status.error_message = vs.error_message
        return response


def _error_code(name: str) -> int:
    return int(getattr(grpc.StatusCode, name).value[0])


def add_services(server: grpc.Server, manager: ModelManager, runner: Any) -> None:
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, runner), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager), server)


__all__ = ["ModelService", "PredictionService", "add_services", "model_pb2"]
