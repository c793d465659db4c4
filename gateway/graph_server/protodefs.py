"""Text-format messages TF-Serving reads that ``tensorflow-serving-api`` does not ship.

``--batching_parameters_file`` holds a ``tensorflow.serving.BatchingParameters``
(``session_bundle_config.proto``) and ``--monitoring_config_file`` a
``tensorflow.serving.MonitoringConfig`` (``monitoring_config.proto``). The pip
package has neither, so the two message types are declared here field by field
(same names, numbers and types as the upstream ``.proto`` files) in a private
descriptor pool and parsed with protobuf's own text-format parser. Nothing is
generated or written to disk.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "tensorflow.serving"

# (name, number, type, label, type_name) as in the upstream .proto files.
_BATCHING_FIELDS = [
    ("max_batch_size", 1, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".google.protobuf.Int64Value"),
    ("batch_timeout_micros", 2, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".google.protobuf.Int64Value"),
    ("max_enqueued_batches", 3, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".google.protobuf.Int64Value"),
    ("num_batch_threads", 4, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".google.protobuf.Int64Value"),
    ("thread_pool_name", 5, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".google.protobuf.StringValue"),
    ("allowed_batch_sizes", 6, _F.TYPE_INT64, _F.LABEL_REPEATED, ""),
    ("pad_variable_length_inputs", 7, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, ""),
    ("enable_large_batch_splitting", 8, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".google.protobuf.BoolValue"),
    ("max_execution_batch_size", 9, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".google.protobuf.Int64Value"),
]
_PROMETHEUS_FIELDS = [
    ("enable", 1, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, ""),
    ("path", 2, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
]
_MONITORING_FIELDS = [
    ("prometheus_config", 1, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, f".{_PACKAGE}.PrometheusConfig"),
]


class ProtoTextError(ValueError):
    """A config file that is not valid text format for its message type."""


def _message(file: Any, name: str, fields: list[tuple[str, int, int, int, str]]) -> None:
    msg = file.message_type.add(name=name)
    for fname, number, ftype, label, type_name in fields:
        f = msg.field.add(name=fname, number=number, type=ftype, label=label)
        if type_name:
            f.type_name = type_name


@cache
def _classes() -> dict[str, Any]:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(
        name="gateway/graph_server/serving_configs.proto",
        package=_PACKAGE,
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    _message(file, "BatchingParameters", _BATCHING_FIELDS)
    _message(file, "PrometheusConfig", _PROMETHEUS_FIELDS)
    _message(file, "MonitoringConfig", _MONITORING_FIELDS)
    pool.Add(file)
    names = ("BatchingParameters", "PrometheusConfig", "MonitoringConfig")
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{n}")) for n in names}


def batching_parameters(text: str = "") -> Any:
    """A ``BatchingParameters`` message parsed from text format."""
    return _parse("BatchingParameters", text)


def monitoring_config(text: str = "") -> Any:
    """A ``MonitoringConfig`` message parsed from text format."""
    return _parse("MonitoringConfig", text)


def read_text_proto(kind: str, path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as e:
        raise ProtoTextError(f"{path}: {e.strerror}") from e
    return _parse(kind, text)


def _parse(kind: str, text: str) -> Any:
    msg = _classes()[kind]()
    try:
        text_format.Parse(text, msg)
    except text_format.ParseError as e:
        raise ProtoTextError(f"Error parsing text-format {_PACKAGE}.{kind}: {e}") from e
    return msg
