"""TensorFlow Serving message and service modules, imported without TensorFlow.

The generated ``*_pb2`` modules shipped by ``tensorflow-serving-api`` import
``tensorflow.core.framework.tensor_pb2`` and friends. Importing those the normal
way runs ``tensorflow/__init__.py``, which loads the whole runtime (seconds and
hundreds of MB per process). The message modules themselves are plain protobuf
code, so we put a bare package object named ``tensorflow`` whose ``__path__``
points at the installed directory into ``sys.modules`` just long enough to
import them, then take it out again. A later real ``import tensorflow`` (the
graph server, the saver, a test computing offline scores) runs the real
initialiser and reuses the already-imported message modules, which are the
very same objects, so descriptors are never registered twice.

Import everything proto-related from here, never from ``tensorflow_serving``
directly, so the shim is always in place first.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

_lock = threading.Lock()


def _import_without_tf_init(names: list[str]) -> list[Any]:
    with _lock:
        if "tensorflow" in sys.modules:  # real TF (or a shim) already there
            return [importlib.import_module(n) for n in names]
        spec = importlib.util.find_spec("tensorflow")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(
                "the 'tensorflow' package files are needed for the TF-Serving protos; "
                "install tensorflow-serving-api"
            )
        shim = types.ModuleType("tensorflow")
        shim.__path__ = list(spec.submodule_search_locations)
        sys.modules["tensorflow"] = shim
        try:
            return [importlib.import_module(n) for n in names]
        finally:
            del sys.modules["tensorflow"]


(
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
    example_pb2,
    feature_pb2,
    meta_graph_pb2,
    saved_model_pb2,
    model_pb2,
    predict_pb2,
    classification_pb2,
    regression_pb2,
    inference_pb2,
    input_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
    model_service_pb2_grpc,
    model_server_config_pb2,
    error_codes_pb2,
) = _import_without_tf_init(
    [
        "tensorflow.core.framework.tensor_pb2",
        "tensorflow.core.framework.tensor_shape_pb2",
        "tensorflow.core.framework.types_pb2",
        "tensorflow.core.example.example_pb2",
        "tensorflow.core.example.feature_pb2",
        "tensorflow.core.protobuf.meta_graph_pb2",
        "tensorflow.core.protobuf.saved_model_pb2",
        "tensorflow_serving.apis.model_pb2",
        "tensorflow_serving.apis.predict_pb2",
        "tensorflow_serving.apis.classification_pb2",
        "tensorflow_serving.apis.regression_pb2",
        "tensorflow_serving.apis.inference_pb2",
        "tensorflow_serving.apis.input_pb2",
        "tensorflow_serving.apis.get_model_metadata_pb2",
        "tensorflow_serving.apis.get_model_status_pb2",
        "tensorflow_serving.apis.model_management_pb2",
        "tensorflow_serving.apis.prediction_log_pb2",
        "tensorflow_serving.apis.prediction_service_pb2_grpc",
        "tensorflow_serving.apis.model_service_pb2_grpc",
        "tensorflow_serving.config.model_server_config_pb2",
        "tensorflow.core.protobuf.error_codes_pb2",
    ]
)

__all__ = [
    "classification_pb2",
    "error_codes_pb2",
    "example_pb2",
    "feature_pb2",
    "get_model_metadata_pb2",
    "get_model_status_pb2",
    "inference_pb2",
    "input_pb2",
    "meta_graph_pb2",
    "model_management_pb2",
    "model_pb2",
    "model_server_config_pb2",
    "model_service_pb2_grpc",
    "predict_pb2",
    "prediction_log_pb2",
    "prediction_service_pb2_grpc",
    "regression_pb2",
    "saved_model_pb2",
    "tensor_pb2",
    "tensor_shape_pb2",
    "types_pb2",
]
