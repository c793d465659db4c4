"""gRPC services: ``tensorflow.serving.PredictionService`` and ``ModelService``.

Thin: each method decodes tensors, calls the dataplane and encodes the answer.
Predict outputs use the typed ``*_val`` fields, as TF-Serving answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from gateway.graph_server.dataplane import Dataplane
from gateway.graph_server.errors import ServingError
from gateway.graph_server.monitoring import CallInfo, Metrics
from gateway.wire.protos import model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc
from gateway.wire.tensors import TensorError, fill_proto_fields, to_numpy

log = logging.getLogger("gateway.graph_server")
R = TypeVar("R")
Method = Callable[[Any, Any, grpc.ServicerContext, CallInfo], R]


def _rpc(api: str) -> Callable[[Method[R]], Callable[[Any, Any, grpc.ServicerContext], R]]:
    """Record the call's metrics and turn failures into gRPC statuses (never a traceback)."""

    def wrap(fn: Method[R]) -> Callable[[Any, Any, grpc.ServicerContext], R]:
        def method(self: Any, request: Any, context: grpc.ServicerContext) -> R:
            info = CallInfo(api=api, entrypoint="GRPC")
            code, message = grpc.StatusCode.OK, ""
            try:
                return fn(self, request, context, info)
            except ServingError as e:
                code, message = e.code, e.message
            except TensorError as e:
                code, message = grpc.StatusCode.INVALID_ARGUMENT, str(e)
            except Exception as e:
                log.exception("internal error in %s", api)
                code, message = grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}"
            finally:
                self.metrics.record(info, code.name)
            context.abort(code, message)
            raise AssertionError("unreachable")  # abort raises

        method.__name__ = fn.__name__
        return method

    return wrap


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):  # type: ignore[misc]
    def __init__(self, dataplane: Dataplane, metrics: Metrics) -> None:
        self.dataplane = dataplane
        self.metrics = metrics

    @_rpc("Predict")
    def Predict(self, request: Any, context: grpc.ServicerContext, info: CallInfo) -> Any:
        inputs = {alias: to_numpy(t) for alias, t in request.inputs.items()}
        pred = self.dataplane.predict(
            request.model_spec,
            inputs,
            list(request.output_filter),
            info,
            has_spec=request.HasField("model_spec"),
        )
        response = predict_pb2.PredictResponse()
        spec = response.model_spec
        spec.name, spec.signature_name = pred.name, pred.signature_name
        spec.version.value = pred.version
        for alias, value in pred.outputs.items():
            fill_proto_fields(response.outputs[alias], value)
        return response

    @_rpc("Classify")
    def Classify(self, request: Any, context: grpc.ServicerContext, info: CallInfo) -> Any:
        return self.dataplane.classify(request, info)

    @_rpc("Regress")
    def Regress(self, request: Any, context: grpc.ServicerContext, info: CallInfo) -> Any:
        return self.dataplane.regress(request, info)

    @_rpc("MultiInference")
    def MultiInference(self, request: Any, context: grpc.ServicerContext, info: CallInfo) -> Any:
        return self.dataplane.multi_inference(request, info)

    @_rpc("GetModelMetadata")
    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext, info: CallInfo) -> Any:
        return self.dataplane.metadata(request, info)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):  # type: ignore[misc]
    def __init__(self, dataplane: Dataplane, metrics: Metrics) -> None:
        self.dataplane = dataplane
        self.metrics = metrics

    @_rpc("GetModelStatus")
    def GetModelStatus(self, request: Any, context: grpc.ServicerContext, info: CallInfo) -> Any:
        return self.dataplane.status(request, info)

    @_rpc("HandleReloadConfigRequest")
    def HandleReloadConfigRequest(self, request: Any, context: grpc.ServicerContext, info: CallInfo) -> Any:
        return self.dataplane.reload(request)


def add_services(server: grpc.Server, dataplane: Dataplane, metrics: Metrics) -> None:
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(dataplane, metrics), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(dataplane, metrics), server)
