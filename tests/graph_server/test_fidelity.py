"""The real graph-server on TF-Serving's own test models, checked against TF-Serving's own answers.

One server (one config file) serves every model this module needs: ``default``
is saved_model_half_plus_two_cpu (the model TF-Serving's server tests call
``default``), plus the TF2 export, the counter model and the two-version model.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import requests

from gateway.wire.protos import (
    classification_pb2,
    example_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from gateway.wire.tensors import to_numpy, to_proto
from tests.conftest import GraphFactory
from tests.graph_server.conftest import (
    RPC_TIMEOUT,
    Graph,
    config_text,
    predict_x,
    sorted_object,
    start_server,
    y_of,
)

pytestmark = pytest.mark.integration

HP2 = "saved_model_half_plus_two_cpu"


@pytest.fixture(scope="module")
def graph(
    start_graph: GraphFactory, anchors: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Graph]:
    config = tmp_path_factory.mktemp("fidelity") / "models.config"
    config.write_text(
        config_text(
            [
                {"name": "default", "base_path": anchors / HP2},
                {"name": "tf2", "base_path": anchors / "saved_model_half_plus_two_tf2_cpu"},
                {"name": "counter", "base_path": anchors / "saved_model_counter"},
                {
                    "name": "two",
                    "base_path": anchors / "saved_model_half_plus_two_2_versions",
                    "policy": "model_version_policy { all {} }",
                    "labels": {"stable": 123, "canary": 124},
                },
            ]
        )
    )
    g = start_server(
        start_graph,
        f"--model_config_file={config}",
        f"--grpc_socket_path={config.parent / 'graph.sock'}",
        "--allow_version_labels_for_unavailable_models",
        f"--monitoring_config_file={anchors / 'monitoring_config.txt'}",
        "--rest_api_timeout_in_ms=20000",
    )
    yield g
    g.close()


# -- gRPC: TF-Serving's tensorflow_model_server_test expectations --------------
@pytest.mark.parametrize("output_filter", [("y",), ()])
def test_grpc_predict_echoes_version_123(graph: Graph, output_filter: tuple[str, ...]) -> None:
    resp = predict_x(graph, "default", signature="serving_default", output_filter=output_filter)
    assert list(resp.outputs) == ["y"]
    assert resp.outputs["y"].dtype == 1  # DT_FLOAT
    assert list(resp.outputs["y"].float_val) == [3.0]  # typed field, as TF-Serving answers
    assert (resp.model_spec.name, resp.model_spec.signature_name) == ("default", "serving_default")
    assert resp.model_spec.version.value == 123


def test_grpc_over_a_unix_socket(graph: Graph) -> None:
    sock = next(a.split("=", 1)[1] for a in graph.proc.popen.args if str(a).startswith("--grpc_socket_path="))
    with grpc.insecure_channel(f"unix:{sock}") as channel:
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "default"
        req.inputs["x"].CopyFrom(to_proto(np.array([2.0], np.float32)))
        resp = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(req, timeout=RPC_TIMEOUT)
    assert list(resp.outputs["y"].float_val) == [3.0]


def test_grpc_predict_default_signature_and_batch_shape(graph: Graph) -> None:
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "default"
    req.inputs["x"].CopyFrom(to_proto(np.array([[1.0], [2.0], [5.0]], np.float32)))
    resp = graph.predict.Predict(req, timeout=RPC_TIMEOUT)
    np.testing.assert_array_equal(to_numpy(resp.outputs["y"]), [[2.5], [3.0], [4.5]])
    assert resp.model_spec.signature_name == "serving_default"


def _examples_request(kind: Any, model: str, signature: str) -> Any:
    req = kind()
    req.model_spec.name = model
    req.model_spec.signature_name = signature
    example = req.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.append(2.0)
    return req


@pytest.mark.parametrize("model", ["default", "tf2"])
def test_grpc_classify(graph: Graph, model: str) -> None:
    req = _examples_request(classification_pb2.ClassificationRequest, model, "classify_x_to_y")
    resp = graph.predict.Classify(req, timeout=RPC_TIMEOUT)
    assert len(resp.result.classifications) == 1
    assert [(c.label, c.score) for c in resp.result.classifications[0].classes] == [("", 3.0)]
    assert (resp.model_spec.name, resp.model_spec.signature_name) == (model, "classify_x_to_y")
    assert resp.model_spec.version.value == 123


@pytest.mark.parametrize("model", ["default", "tf2"])
def test_grpc_regress(graph: Graph, model: str) -> None:
    req = _examples_request(regression_pb2.RegressionRequest, model, "regress_x_to_y")
    resp = graph.predict.Regress(req, timeout=RPC_TIMEOUT)
    assert [r.value for r in resp.result.regressions] == [3.0]
    assert (resp.model_spec.signature_name, resp.model_spec.version.value) == ("regress_x_to_y", 123)


def test_grpc_regress_with_context_features(graph: Graph) -> None:
    """Context features reach every example; an example's own feature wins on a clash."""
    req = regression_pb2.RegressionRequest()
    req.model_spec.name = "default"
    req.model_spec.signature_name = "regress_x_to_y"
    ctx = req.input.example_list_with_context
    ctx.context.features.feature["x"].float_list.value.append(10.0)
    ctx.examples.add()  # takes x from the context
    ctx.examples.add().features.feature["x"].float_list.value.append(4.0)
    resp = graph.predict.Regress(req, timeout=RPC_TIMEOUT)
    assert [r.value for r in resp.result.regressions] == [7.0, 4.0]


@pytest.mark.parametrize("model", ["default", "tf2"])
def test_grpc_multi_inference(graph: Graph, model: str) -> None:
    req = inference_pb2.MultiInferenceRequest()
    for sig, method in (("regress_x_to_y", "regress"), ("classify_x_to_y", "classify")):
        task = req.tasks.add()
        task.model_spec.name = model
        task.model_spec.signature_name = sig
        task.method_name = f"tensorflow/serving/{method}"
    req.input.example_list.examples.add().features.feature["x"].float_list.value.append(2.0)
    resp = graph.predict.MultiInference(req, timeout=RPC_TIMEOUT)
    assert len(resp.results) == 2
    assert resp.results[0].regression_result.regressions[0].value == 3.0
    assert resp.results[1].classification_result.classifications[0].classes[0].score == 3.0
    for result, task in zip(resp.results, req.tasks, strict=True):
        assert result.model_spec.name == model
        assert result.model_spec.signature_name == task.model_spec.signature_name
        assert result.model_spec.version.value == 123


def test_grpc_metadata_and_status(graph: Graph, anchors: Path) -> None:
    req = get_model_metadata_pb2.GetModelMetadataRequest()
    req.model_spec.name = "default"
    req.metadata_field.append("signature_def")
    resp = graph.predict.GetModelMetadata(req, timeout=RPC_TIMEOUT)
    assert (resp.model_spec.name, resp.model_spec.version.value) == ("default", 123)
    assert list(resp.metadata) == ["signature_def"]
    sigmap = get_model_metadata_pb2.SignatureDefMap()
    assert resp.metadata["signature_def"].Unpack(sigmap)
    expected = json.loads((anchors / "half_plus_two_model_metadata.json").read_text())
    assert sorted(sigmap.signature_def) == sorted(expected["metadata"]["signature_def"]["signature_def"])
    assert graph.status("default") == {123: (30, 0, "")}


def test_counter_model_keeps_state(graph: Graph) -> None:
    def call(signature: str, **inputs: float) -> float:
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "counter"
        req.model_spec.signature_name = signature
        for alias, value in inputs.items():
            req.inputs[alias].CopyFrom(to_proto(np.float32(value)))
        resp = graph.predict.Predict(req, timeout=RPC_TIMEOUT)
        return float(to_numpy(resp.outputs["output"]))

    assert call("reset_counter") == 0.0
    assert call("get_counter") == 0.0
    assert call("incr_counter") == 1.0
    assert call("incr_counter_by", delta=3.0) == 4.0
    assert call("get_counter") == 4.0
    assert call("reset_counter") == 0.0
    assert call("get_counter") == 0.0


def test_two_versions_latest_pinned_and_labelled(graph: Graph) -> None:
    assert predict_x(graph, "two").model_spec.version.value == 124
    assert predict_x(graph, "two", version=123).model_spec.version.value == 123
    assert predict_x(graph, "two", label="stable").model_spec.version.value == 123
    assert predict_x(graph, "two", label="canary").model_spec.version.value == 124
    assert y_of(predict_x(graph, "two", version=123)) == 3.0
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name, req.model_spec.version_label = "two", "stable"
    status = graph.models.GetModelStatus(req, timeout=RPC_TIMEOUT)
    # Labels play no part in status (TF-Serving): every version, newest first.
    assert [s.version for s in status.model_version_status] == [124, 123]


@pytest.mark.parametrize(
    ("mutate", "code", "text"),
    [
        (
            lambda r: r.model_spec.Clear(),
            grpc.StatusCode.INVALID_ARGUMENT,
            "ModelSpec has no name specified.",
        ),
        (lambda r: r.ClearField("model_spec"), grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec"),
        (lambda r: setattr(r.model_spec, "name", "nope"), grpc.StatusCode.NOT_FOUND, "Latest(nope)"),
        (
            lambda r: r.model_spec.version.__setattr__("value", 9),
            grpc.StatusCode.NOT_FOUND,
            "Specific(default, 9)",
        ),
        (
            lambda r: setattr(r.model_spec, "version_label", "x"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Unrecognized servable version label: x",
        ),
        (
            lambda r: setattr(r.model_spec, "signature_name", "nope"),
            grpc.StatusCode.FAILED_PRECONDITION,
            'Serving signature key "nope" not found.',
        ),
        (
            lambda r: r.output_filter.append("z"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "output tensor alias not found in signature: z",
        ),
        (
            lambda r: r.inputs["x"].CopyFrom(to_proto(np.array([2.0]))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Expects arg[0] to be float but double is provided",
        ),
        (
            lambda r: r.inputs["w"].CopyFrom(to_proto(np.array([2.0], np.float32))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "input size does not match signature: 2!=1",
        ),
    ],
)
def test_grpc_errors_have_tf_serving_codes(
    graph: Graph, mutate: Any, code: grpc.StatusCode, text: str
) -> None:
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "default"
    req.inputs["x"].CopyFrom(to_proto(np.array([2.0], np.float32)))
    mutate(req)
    with pytest.raises(grpc.RpcError) as info:
        graph.predict.Predict(req, timeout=RPC_TIMEOUT)
    assert info.value.code() == code
    assert text in info.value.details()


# -- REST: TF-Serving's REST expectations --------------------------------------
@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        (":predict", {"instances": [1.0, 2.0, 5.0]}, {"predictions": [2.5, 3.0, 4.5]}),
        (":predict", {"inputs": [2.0, 3.0, 4.0]}, {"outputs": [3.0, 3.5, 4.0]}),
        (":predict", {"instances": [{"x": [1.0]}, {"x": [2.0]}]}, {"predictions": [[2.5], [3.0]]}),
        (":predict", {"inputs": {"x": [[1.0], [2.0]]}}, {"outputs": [[2.5], [3.0]]}),
        (
            ":classify",
            {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]},
            {"results": [[["", 3.0]]]},
        ),
        (":regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}, {"results": [3.0]}),
        (
            ":regress",
            {"signature_name": "regress_x_to_y", "context": {"x": 10.0}, "examples": [{}, {"x": 4.0}]},
            {"results": [7.0, 4.0]},
        ),
        ("/versions/123:predict", {"instances": [2.0]}, {"predictions": [3.0]}),
    ],
)
def test_rest_answers(graph: Graph, path: str, body: Any, expected: Any) -> None:
    r = graph.post(f"/v1/models/default{path}", body)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == expected


def test_rest_b64_string_input(graph: Graph) -> None:
    """A DT_STRING input given as {"b64": ...}: serialized examples into classify_x_to_y via Predict."""
    ex = example_pb2.Example()
    ex.features.feature["x"].float_list.value.append(2.0)
    b64 = base64.b64encode(ex.SerializeToString()).decode()
    r = graph.post(
        "/v1/models/default:predict", {"signature_name": "classify_x_to_y", "instances": [{"b64": b64}]}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [[3.0]]}


def test_rest_status_json(graph: Graph) -> None:
    r = graph.get("/v1/models/default")
    assert r.status_code == 200
    assert r.json() == {
        "model_version_status": [
            {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    assert graph.get("/v1/models/default/versions/123").json() == r.json()


@pytest.mark.parametrize(
    ("path", "anchor"),
    [
        ("/v1/models/default/metadata", "half_plus_two_model_metadata.json"),
        ("/v1/models/two/versions/123/metadata", "saved_model_half_plus_two_2_versions_metadata.json"),
        ("/v1/models/two/labels/stable/metadata", "saved_model_half_plus_two_2_versions_metadata.json"),
    ],
)
def test_rest_metadata_equals_anchor(graph: Graph, anchors: Path, path: str, anchor: str) -> None:
    expected = json.loads((anchors / anchor).read_text())
    expected["model_spec"]["name"] = path.split("/")[3]
    r = graph.get(path)
    assert r.status_code == 200, r.text
    assert sorted_object(r.json()) == sorted_object(expected)


@pytest.mark.parametrize(
    "case",
    [
        ("POST", "/v1/models/nope:predict", {"instances": [1.0]}, 404, "Servable not found for request"),
        ("POST", "/v1/models/default:predict", "{", 400, "JSON Parse error"),
        ("POST", "/v1/models/default:predict", "", 400, "JSON Parse error: The document is empty"),
        ("POST", "/v1/models/default:predict", {"x": 1}, 400, "Missing 'inputs' or 'instances' key"),
        ("POST", "/v1/models/default:predict", {"instances": ["a"]}, 400, "is not of expected type: float"),
        ("POST", "/v1/models/default:predict", {"instances": [1], "inputs": [1]}, 400, "only one of"),
        (
            "POST",
            "/v1/models/default:predict",
            {"signature_name": "nope", "instances": [1.0]},
            400,
            'Serving signature name: "nope" not found in signature def',
        ),
        ("POST", "/v1/models/default:regress", {"signature_name": "regress_x_to_y"}, 400, "'examples'"),
        ("POST", "/v1/models/default:explain", {}, 400, "Malformed request: POST /v1/models/default:explain"),
        ("GET", "/v1/models", None, 400, "Missing model name in request."),
        ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
        ("GET", "/v1/models/default/versions/7", None, 404, "Could not find version 7 of model default"),
        ("GET", "/v1/models/default/labels/x/metadata", None, 400, "Unrecognized servable version label"),
        ("DELETE", "/v1/models/default", None, 400, "Malformed request"),
        ("GET", "/elsewhere", None, 404, "Not found"),
    ],
)
def test_rest_errors(graph: Graph, case: tuple[str, str, Any, int, str]) -> None:
    method, path, body, status, text = case
    data = body if isinstance(body, str) or body is None else json.dumps(body)
    r = requests.request(method, graph.url(path), data=data, timeout=RPC_TIMEOUT)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert list(r.json()) == ["error"]
    assert text in r.json()["error"]


def test_prometheus_page_counts_requests(graph: Graph) -> None:
    predict_x(graph, "default")
    graph.post("/v1/models/default:predict", {"instances": [1.0]})
    text = graph.metrics()
    assert "# TYPE" in text
    grpc_line = next(
        line
        for line in text.splitlines()
        if line.startswith(":tensorflow:serving:request_count_total{") and 'API="Predict"' in line
    )
    assert 'model_name="default"' in grpc_line and 'version="123"' in grpc_line
    assert 'signature_name="serving_default"' in grpc_line and 'status="OK"' in grpc_line
    assert ':tensorflow:serving:request_latency_bucket{API="predict",entrypoint="REST"' in text
    assert ':tensorflow:cc:saved_model:load_attempt_count_total{model_path="' in text
