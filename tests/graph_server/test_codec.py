"""TF-Serving's REST JSON rules, config parsing and status tables, without a server."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any

import grpc
import numpy as np
import pytest

from gateway.graph_server import example_json, rest_json
from gateway.graph_server.config import sources_from_config
from gateway.graph_server.errors import ServingError
from gateway.graph_server.protodefs import ProtoTextError, monitoring_config
from gateway.wire.model_config import ModelConfigError, parse_text
from gateway.wire.protos import example_pb2, types_pb2
from gateway.wire.status import http_status

F, S, I64, I32, B = (
    types_pb2.DT_FLOAT,
    types_pb2.DT_STRING,
    types_pb2.DT_INT64,
    types_pb2.DT_INT32,
    types_pb2.DT_BOOL,
)


def infos(**dtypes: int) -> dict[str, Any]:
    return {name: SimpleNamespace(dtype=dt) for name, dt in dtypes.items()}


def decode(body: Any, **dtypes: int) -> tuple[rest_json.Format, dict[str, Any]]:
    doc = rest_json.parse_body(json.dumps(body).encode())
    return rest_json.predict_inputs(doc, infos(**dtypes), "")


# -- request bodies ------------------------------------------------------------
def test_row_format_stacks_instances() -> None:
    fmt, t = decode({"instances": [[1, 2], [3, 4]]}, x=F)
    assert fmt is rest_json.Format.ROW
    np.testing.assert_array_equal(t["x"], np.array([[1, 2], [3, 4]], np.float32))
    assert t["x"].dtype == np.float32


def test_row_format_named_inputs_and_b64() -> None:
    raw = b"\x00\xffbytes"
    body = {"instances": [{"a": 1, "s": {"b64": base64.b64encode(raw).decode()}}, {"a": 2, "s": "text"}]}
    _fmt, t = decode(body, a=I64, s=S)
    np.testing.assert_array_equal(t["a"], np.array([1, 2], np.int64))
    assert list(t["s"]) == [raw, b"text"]


def test_columnar_format_takes_whole_tensors() -> None:
    fmt, t = decode({"inputs": {"a": [[1], [2]], "b": True}}, a=I32, b=B)
    assert fmt is rest_json.Format.COLUMNAR
    assert t["a"].shape == (2, 1) and t["a"].dtype == np.int32
    assert t["b"].shape == () and bool(t["b"]) is True


@pytest.mark.parametrize(
    ("body", "dtypes", "message"),
    [
        ({"instances": [1.5]}, {"x": I64}, "JSON Value: 1.5 Type: Number is not of expected type: int64"),
        ({"instances": [True]}, {"x": F}, "Type: True is not of expected type: float"),
        ({"instances": [2**40]}, {"x": I32}, "is not of expected type: int32"),
        ({"instances": [[1, 2], [3]]}, {"x": F}, "Expecting tensor size: 2 but got: 1"),
        ({"instances": [[1, [2]]]}, {"x": F}, "Encountered list at unexpected level: 1 expected < 1"),
        ({"instances": [1]}, {"x": F, "y": F}, "instances is a plain list, but expecting list of objects"),
        ({"instances": [{"x": 1}]}, {"x": F, "y": F}, "keys must be equal to: x,y"),
        ({"instances": [{"x": 1}, 2]}, {"x": F}, "Expecting object but got list at item 1 of input list"),
        ({"instances": [{"z": 1}]}, {"x": F}, "JSON object: does not have named input: z"),
        ({"instances": []}, {"x": F}, "No values in 'instances' array"),
        ({"instances": 1}, {"x": F}, "Expecting 'instances' to be an list/array"),
        ({"inputs": {"y": 1}}, {"x": F}, "Missing named input: x in 'inputs' object."),
        ({"inputs": 1}, {"x": F, "y": F}, "inputs is a plain value/list, but expecting an object"),
        ({"inputs": {"b64": "%%%"}}, {"x": S}, "Unable to base64 decode"),
        ({"inputs": {"b64": "AA=="}}, {"x": F}, "Type: Object is not of expected type: float"),
        ({"signature_name": 3, "inputs": 1}, {"x": F}, "'signature_name' key must be a string value."),
    ],
)
def test_bad_predict_bodies(body: Any, dtypes: dict[str, int], message: str) -> None:
    with pytest.raises(ServingError) as info:
        doc = rest_json.parse_body(json.dumps(body).encode())
        rest_json.signature_name(doc)
        rest_json.predict_inputs(doc, infos(**dtypes), "")
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.message


def test_body_parsing_accepts_nan_and_rejects_non_objects() -> None:
    doc = rest_json.parse_body(b'{"inputs": [NaN, Infinity, -Infinity]}')
    _fmt, t = rest_json.predict_inputs(doc, infos(x=F), "")
    assert np.isnan(t["x"][0]) and t["x"][1] == np.inf and t["x"][2] == -np.inf
    with pytest.raises(ServingError, match="Is not object"):
        rest_json.parse_body(b"[1]")
    with pytest.raises(ServingError, match="JSON Parse error"):
        rest_json.parse_body(b'{"a": }')


def test_unsupported_dtype_is_unimplemented() -> None:
    with pytest.raises(ServingError) as info:
        decode({"inputs": [1.0]}, x=types_pb2.DT_HALF)
    assert info.value.code == grpc.StatusCode.UNIMPLEMENTED


# -- response bodies -----------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [(3.0, "3.0"), (0.1, "0.1"), (2.5, "2.5"), (1e-7, "1e-07"), (9e6, "9e+06"), (1 / 3, "0.333333343")],
)
def test_float32_written_shortest_with_trailing_zero(value: float, text: str) -> None:
    assert rest_json.format_float32(float(np.float32(value))) == text


def test_float_specials_and_doubles() -> None:
    assert [rest_json.format_float32(v) for v in (np.nan, np.inf, -np.inf)] == [
        "NaN",
        "Infinity",
        "-Infinity",
    ]
    assert rest_json.format_float64(0.1) == "0.1"
    assert rest_json.format_float64(1 / 3) == "0.33333333333333331"


def test_predictions_elide_a_single_output_name() -> None:
    y = np.array([[1.0], [2.0]], np.float32)
    assert json.loads(rest_json.predict_json({"y": y}, rest_json.Format.ROW)) == {
        "predictions": [[1.0], [2.0]]
    }
    assert json.loads(rest_json.predict_json({"y": y}, rest_json.Format.COLUMNAR)) == {
        "outputs": [[1.0], [2.0]]
    }


def test_several_outputs_are_named_and_bytes_outputs_are_b64() -> None:
    outs = {
        "k": np.array([1, 2], np.int64),
        "img_bytes": np.array([b"\x00\x01", b"z"], dtype=object),
        "label": np.array([b"a", b"b"], dtype=object),
        "ok": np.array([True, False]),
    }
    row = json.loads(rest_json.predict_json(outs, rest_json.Format.ROW))
    assert row["predictions"][0] == {"k": 1, "img_bytes": {"b64": "AAE="}, "label": "a", "ok": True}
    col = json.loads(rest_json.predict_json(outs, rest_json.Format.COLUMNAR))
    assert col["outputs"]["img_bytes"] == [{"b64": "AAE="}, {"b64": "eg=="}]


def test_row_format_needs_a_batch_dimension() -> None:
    with pytest.raises(ServingError, match="has no shape information"):
        rest_json.predict_json({"y": np.float32(1.0).reshape(())}, rest_json.Format.ROW)
    with pytest.raises(ServingError, match="inconsistent batch size: 3 expecting: 2"):
        rest_json.predict_json({"a": np.zeros(2), "b": np.zeros(3)}, rest_json.Format.ROW)


# -- examples -----------------------------------------------------------------
def test_examples_become_tf_examples() -> None:
    doc = {
        "context": {"c": "ctx"},
        "examples": [{"f": 2.0, "i": [1, 2], "s": "x", "b": True, "r": {"b64": "AAE="}}],
    }
    inp = example_json.examples_input(doc)
    ctx = inp.example_list_with_context
    assert ctx.context.features.feature["c"].bytes_list.value == [b"ctx"]
    f = ctx.examples[0].features.feature
    assert list(f["f"].float_list.value) == [2.0]
    assert list(f["i"].int64_list.value) == [1, 2]
    assert f["s"].bytes_list.value == [b"x"] and f["r"].bytes_list.value == [b"\x00\x01"]
    assert list(f["b"].int64_list.value) == [1]
    assert isinstance(ctx.examples[0], example_pb2.Example)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"examples": [{"f": [1, "a"]}]}, "Unexpected element type in feature: f expecting type: int64"),
        ({"examples": [{"f": None}]}, "Feature: f has element with unexpected JSON type: Null"),
        ({"examples": [{"f": [[1]]}]}, "Feature: f has element with unexpected JSON type: Array"),
        ({"examples": [{"f": 2**63}]}, "has uint64_t element. Only int64_t is supported."),
        ({"examples": [3]}, "Example must be JSON object but got JSON Number"),
        ({"examples": []}, "'examples' value is an empty array"),
        ({"instances": []}, "key 'examples' is expected and was not found"),
    ],
)
def test_bad_examples(doc: Any, message: str) -> None:
    with pytest.raises(ServingError, match=message.replace("[", r"\[").replace(".", r"\.")):
        example_json.examples_input(doc)


# -- configs and tables --------------------------------------------------------
def test_model_server_config_policies_and_labels() -> None:
    config = parse_text(
        'model_config_list { config { name: "a" base_path: "/a" model_platform: "tensorflow" '
        "model_version_policy { specific { versions: 1 versions: 3 } } "
        'version_labels { key: "stable" value: 1 } } '
        'config { name: "b" base_path: "/b" model_platform: "tensorflow" '
        "model_version_policy { latest { num_versions: 2 } } } }"
    )
    a, b = sources_from_config(config)
    assert a.policy.aspired([1, 2, 3, 4]) == [1, 3] and a.labels == {"stable": 1}
    assert b.policy.aspired([1, 2, 3, 4]) == [3, 4]


def test_config_errors() -> None:
    with pytest.raises(
        ModelConfigError, match=r"Error parsing text-format tensorflow\.serving\.ModelServerConfig"
    ):
        parse_text("improperly formatted file")
    bad_platform = parse_text(
        'model_config_list { config { name: "a" base_path: "/a" model_platform: "onnx" } }'
    )
    with pytest.raises(ModelConfigError, match="requested unsupported platform onnx"):
        sources_from_config(bad_platform)


def test_monitoring_config_text() -> None:
    msg = monitoring_config('prometheus_config { enable: true path: "/m" }')
    assert msg.prometheus_config.enable and msg.prometheus_config.path == "/m"
    with pytest.raises(
        ProtoTextError, match=r"Error parsing text-format tensorflow\.serving\.MonitoringConfig"
    ):
        monitoring_config("prometheus { }")


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("INVALID_ARGUMENT", 400),
        ("FAILED_PRECONDITION", 400),
        ("OUT_OF_RANGE", 400),
        ("NOT_FOUND", 404),
        ("ALREADY_EXISTS", 409),
        ("ABORTED", 409),
        ("RESOURCE_EXHAUSTED", 429),
        ("CANCELLED", 499),
        ("UNIMPLEMENTED", 501),
        ("UNAVAILABLE", 503),
        ("DEADLINE_EXCEEDED", 504),
        ("PERMISSION_DENIED", 403),
        ("UNAUTHENTICATED", 401),
        ("INTERNAL", 500),
        ("UNKNOWN", 500),
        ("DATA_LOSS", 500),
    ],
)
def test_http_status_table(code: str, status: int) -> None:
    assert http_status(getattr(grpc.StatusCode, code)) == status
