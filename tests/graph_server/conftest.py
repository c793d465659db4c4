"""Helpers for graph-server tests: a started server's ports, stubs and plain clients."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import requests

from gateway.procs import Proc, free_port
from gateway.wire.protos import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    types_pb2,
)
from gateway.wire.tensors import to_numpy
from tests.conftest import GraphFactory
from tests.support import ANCHORS_FOUND, NO_ANCHORS

RPC_TIMEOUT = 30.0


@dataclass
class Graph:
    """A running graph-server: its process, gRPC port and REST port."""

    proc: Proc
    grpc_port: int
    rest_port: int
    _channel: grpc.Channel | None = field(default=None, repr=False)

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}")
        return self._channel

    @property
    def predict(self) -> Any:
        return prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    @property
    def models(self) -> Any:
        return model_service_pb2_grpc.ModelServiceStub(self.channel)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.rest_port}{path}"

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url(path), timeout=RPC_TIMEOUT)

    def post(self, path: str, body: Any) -> requests.Response:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return requests.post(self.url(path), data=data, timeout=RPC_TIMEOUT)

    def status(self, model: str) -> dict[int, tuple[int, int, str]]:
        """version -> (state, error_code, error_message)."""
        req = get_model_status_pb2.GetModelStatusRequest()
        req.model_spec.name = model
        resp = self.models.GetModelStatus(req, timeout=RPC_TIMEOUT)
        return {
            s.version: (s.state, s.status.error_code, s.status.error_message)
            for s in resp.model_version_status
        }

    def metrics(self) -> str:
        return str(self.get("/monitoring/prometheus/metrics").text)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self.proc.stop()


def start_server(start_graph: GraphFactory, *flags: str) -> Graph:
    """Start graph-server with a REST port; returns once its ports are open."""
    rest = free_port()
    proc, port = start_graph(*flags, f"--rest_api_port={rest}")
    return Graph(proc, port, rest)


def predict_x(
    graph: Graph,
    model: str,
    x: float = 2.0,
    *,
    version: int | None = None,
    label: str | None = None,
    signature: str = "",
    output_filter: tuple[str, ...] = ("y",),
) -> Any:
    """TF-Serving's own Predict probe: x as float_val with shape [1]."""
    req = predict_pb2.PredictRequest()
    req.model_spec.name = model
    req.model_spec.signature_name = signature
    if version is not None:
        req.model_spec.version.value = version
    if label is not None:
        req.model_spec.version_label = label
    req.inputs["x"].dtype = types_pb2.DT_FLOAT
    req.inputs["x"].float_val.append(x)
    req.inputs["x"].tensor_shape.dim.add().size = 1
    req.output_filter.extend(output_filter)
    return graph.predict.Predict(req, timeout=RPC_TIMEOUT)


def y_of(response: Any) -> float:
    return float(to_numpy(response.outputs["y"]).reshape(-1)[0])


def sorted_object(obj: Any) -> Any:
    """A JSON value with every list sorted, for order-free comparison (as TF-Serving's test does)."""
    if isinstance(obj, dict):
        return sorted((k, sorted_object(v)) for k, v in obj.items())
    if isinstance(obj, list):
        return sorted(json.dumps(sorted_object(v), sort_keys=True) for v in obj)
    return obj


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def config_text(models: list[dict[str, Any]]) -> str:
    """ModelServerConfig text for a list of {name, base_path, [policy], [labels]}."""
    parts = []
    for m in models:
        extra = m.get("policy", "")
        for label, version in m.get("labels", {}).items():
            extra += f' version_labels {{ key: "{label}" value: {version} }}'
        head = f'name: "{m["name"]}" base_path: "{m["base_path"]}" model_platform: "tensorflow"'
        parts.append(f"config {{ {head} {extra} }}")
    return "model_config_list {\n  " + "\n  ".join(parts) + "\n}\n"


def half_plus_two_rows(xs: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return (0.5 * xs + 2.0).astype(np.float32)


@pytest.fixture(scope="session")
def anchors() -> Path:
    if ANCHORS_FOUND is None:
        pytest.skip(NO_ANCHORS)
    return ANCHORS_FOUND


@pytest.fixture
def stop_later() -> Iterator[list[Graph]]:
    graphs: list[Graph] = []
    yield graphs
    for g in graphs:
        g.close()
