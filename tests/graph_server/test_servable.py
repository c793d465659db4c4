"""Loading, running and warming up SavedModels in this process (TensorFlow is imported here)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from gateway.graph_server.errors import ServingError
from gateway.graph_server.runner import DirectRunner, EchoRunner
from gateway.wire.protos import prediction_log_pb2
from gateway.wire.tensors import to_proto
from tests.support import ANCHORS, ANCHORS_FOUND, NO_ANCHORS

pytestmark = [pytest.mark.slow, pytest.mark.skipif(ANCHORS_FOUND is None, reason=NO_ANCHORS)]

SAVED_MODELS = (
    sorted(p.name for p in ANCHORS.iterdir() if p.is_dir() and any(p.glob("*/saved_model.pb")))
    if ANCHORS_FOUND is not None
    else []
)
HALF_PLUS_TWO = [n for n in SAVED_MODELS if n.startswith("saved_model_half_plus_two")]


def load(name: str, version_dir: Path | None = None) -> Any:
    from gateway.graph_server.servable import Servable

    path = version_dir or next(p for p in sorted((ANCHORS / name).iterdir()) if p.is_dir())
    return Servable(name, int(path.name), path)


def test_every_anchor_saved_model_is_covered() -> None:
    assert "saved_model_counter" in SAVED_MODELS and "saved_model_half_plus_three" in SAVED_MODELS
    assert len(SAVED_MODELS) == 11


@pytest.mark.parametrize("name", SAVED_MODELS)
def test_every_anchor_saved_model_loads(name: str) -> None:
    servable = load(name)
    try:
        assert servable.signatures
        if name in HALF_PLUS_TWO:
            key, out = servable.predict("", {"x": np.array([[2.0]], np.float32)})
            assert key == "serving_default"
            np.testing.assert_array_equal(out["y"].reshape(-1), [3.0])
    finally:
        servable.close()


@pytest.mark.parametrize("name", HALF_PLUS_TWO)
def test_negative_inter_op_threads_run_every_op_in_the_calling_thread(name: str) -> None:
    """``--tensorflow_inter_op_parallelism=-1`` (TensorFlow's meaning: no inter-op pool) still serves."""
    from gateway.graph_server.servable import Servable, session_config

    path = next(p for p in sorted((ANCHORS / name).iterdir()) if p.is_dir())
    servable = Servable(name, int(path.name), path, session_config(intra_op=1, inter_op=-1))
    try:
        _, out = servable.predict("", {"x": np.array([[2.0], [4.0]], np.float32)})
        np.testing.assert_array_equal(out["y"].reshape(-1), [3.0, 4.0])
    finally:
        servable.close()


@pytest.mark.parametrize("name", ["bad_half_plus_two", "saved_model_half_plus_two_tflite"])
def test_unloadable_directories_fail_cleanly(name: str) -> None:
    from gateway.graph_server.servable import grpc_code

    with pytest.raises(Exception) as info:
        load(name)
    assert grpc_code(info.value) == grpc.StatusCode.NOT_FOUND
    assert "SavedModel file does not exist" in str(info.value)


def test_half_plus_three_runs_its_tf1_graph() -> None:
    servable = load("saved_model_half_plus_three")
    try:
        _key, out = servable.predict("serving_default", {"x": np.array([1.0, 2.0], np.float32)}, ("y",))
        np.testing.assert_array_equal(out["y"], [3.5, 4.0])
    finally:
        servable.close()


def test_echo_runner_answers_zeros_of_the_signature_shape() -> None:
    servable = load("saved_model_half_plus_two_cpu")
    try:
        key, out = EchoRunner().predict(servable, "", {"x": np.ones((5, 1), np.float32)}, ())
        assert key == "serving_default"
        assert out["y"].shape == (5, 1) and out["y"].dtype == np.float32 and not out["y"].any()
        with pytest.raises(ServingError, match="not found"):
            EchoRunner().predict(servable, "nope", {"x": np.ones((5, 1), np.float32)}, ())
    finally:
        servable.close()


# -- warmup ---------------------------------------------------------------------
def _write(path: Path, records: list[bytes]) -> None:
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as w:
        for r in records:
            w.write(r)


def _logs() -> list[bytes]:
    out = []
    p = prediction_log_pb2.PredictionLog()
    p.predict_log.request.model_spec.name = "m"
    p.predict_log.request.inputs["x"].CopyFrom(to_proto(np.array([[1.0]], np.float32)))
    out.append(p.SerializeToString())
    for kind, sig in (("classify_log", "classify_x_to_y"), ("regress_log", "regress_x_to_y")):
        log = prediction_log_pb2.PredictionLog()
        req = getattr(log, kind).request
        req.model_spec.signature_name = sig
        req.input.example_list.examples.add().features.feature["x"].float_list.value.append(1.0)
        out.append(log.SerializeToString())
    multi = prediction_log_pb2.PredictionLog()
    task = multi.multi_inference_log.request.tasks.add()
    task.model_spec.name, task.model_spec.signature_name = "m", "regress_x_to_y"
    task.method_name = "tensorflow/serving/regress"
    example = multi.multi_inference_log.request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.append(1.0)
    out.append(multi.SerializeToString())
    return out


@pytest.fixture
def hp2_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "123"
    shutil.copytree(ANCHORS / "saved_model_half_plus_two_cpu" / "00000123", dst)
    return dst


def test_warmup_replays_every_request_kind(hp2_copy: Path) -> None:
    from gateway.graph_server.warmup import WARMUP_FILE, run_warmup

    _write(hp2_copy / WARMUP_FILE, _logs())
    servable = load("hp2", hp2_copy)
    try:
        assert run_warmup(servable, DirectRunner()) == 4
    finally:
        servable.close()


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (lambda: _logs()[:1] * 1001, "Number of warmup records exceeds the maximum (1000)"),
        (lambda: [b"\xff\x00garbage"], "Failed to parse warmup record"),
        (lambda: [prediction_log_pb2.PredictionLog().SerializeToString()], "Unsupported log_type for warmup"),
    ],
)
def test_bad_warmup_files_fail_the_load(hp2_copy: Path, records: Any, message: str) -> None:
    from gateway.graph_server.warmup import WARMUP_FILE, run_warmup

    _write(hp2_copy / WARMUP_FILE, records())
    servable = load("hp2", hp2_copy)
    try:
        with pytest.raises(ServingError) as info:
            run_warmup(servable, DirectRunner())
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert message in info.value.message
    finally:
        servable.close()


def test_truncated_warmup_file_fails_the_load(hp2_copy: Path) -> None:
    from gateway.graph_server.warmup import WARMUP_FILE, run_warmup

    _write(hp2_copy / WARMUP_FILE, _logs())
    path = hp2_copy / WARMUP_FILE
    path.write_bytes(path.read_bytes()[:-7])
    servable = load("hp2", hp2_copy)
    try:
        with pytest.raises(ServingError) as info:
            run_warmup(servable, DirectRunner())
        assert info.value.code == grpc.StatusCode.DATA_LOSS
    finally:
        servable.close()
