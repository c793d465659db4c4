"""Model warmup: replay ``assets.extra/tf_serving_warmup_requests`` before a version serves.

The file is a TFRecord of ``tensorflow.serving.PredictionLog`` records, as
TF-Serving reads it: each record's request (predict, classify, regress or
multi-inference log) runs against the freshly loaded servable, through the same
runner live traffic uses, so the first real request finds every kernel, callable
and batch shape already built. More than 1000 records, a record that does not
parse, or a request that fails makes the version fail to load.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError

from gateway.graph_server import examples
from gateway.graph_server.errors import ServingError, invalid
from gateway.graph_server.runner import Runner
from gateway.graph_server.servable import Servable, grpc_code
from gateway.wire.protos import prediction_log_pb2
from gateway.wire.tensors import to_numpy

log = logging.getLogger("gateway.graph_server")

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_RECORDS = 1000


def read_records(path: Path) -> Any:
    """Iterate the raw records of a TFRecord file (TensorFlow checks the CRCs)."""
    import tensorflow as tf

    for record in tf.data.TFRecordDataset(str(path)):
        yield record.numpy()


def run_warmup(servable: Servable, runner: Runner, iterations: int = 1, method_check: bool = False) -> int:
    """Replay the servable's warmup records; returns how many records ran."""
    path = servable.path / WARMUP_FILE
    if not path.is_file():
        return 0
    count = 0
    try:
        for record in read_records(path):
            count += 1
            if count > MAX_RECORDS:
                raise invalid(f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
            try:
                entry = prediction_log_pb2.PredictionLog.FromString(record)
            except DecodeError as e:
                raise invalid(f"Failed to parse warmup record from {path}") from e
            for _ in range(max(iterations, 1)):
                _replay(servable, runner, entry, method_check)
    except ServingError:
        raise
    except Exception as e:  # corrupt file: TensorFlow's DataLossError and friends
        raise ServingError(grpc_code(e), f"warmup file {path}: {e}") from e
    log.info("model %s: version %d warmed up with %d record(s)", servable.name, servable.version, count)
    return count


def _replay(servable: Servable, runner: Runner, entry: Any, method_check: bool) -> None:
    kind = entry.WhichOneof("log_type")
    if kind == "predict_log":
        req = entry.predict_log.request
        inputs = {alias: to_numpy(t) for alias, t in req.inputs.items()}
        runner.predict(servable, req.model_spec.signature_name, inputs, list(req.output_filter))
    elif kind == "classify_log":
        examples.classify(servable, entry.classify_log.request, method_check)
    elif kind == "regress_log":
        examples.regress(servable, entry.regress_log.request, method_check)
    elif kind == "multi_inference_log":
        examples.multi_inference(servable, entry.multi_inference_log.request, method_check)
    else:
        raise invalid(f"Unsupported log_type for warmup: {kind}")
