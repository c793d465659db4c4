"""TF-Serving's REST JSON for Classify and Regress: ``examples``/``context`` in, ``results`` out.

Each example is a JSON object of features, converted as TF-Serving's
``json_tensor`` does: numbers with a fraction or exponent become float_list,
integers and booleans int64_list, strings and ``{"b64": ...}`` bytes_list; a
list holds several values of one kind. Results are
``[[[label, score], ...], ...]`` for classification and ``[value, ...]`` for
regression.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gateway.graph_server.errors import invalid
from gateway.graph_server.rest_json import debug, decode_b64, format_float32, is_b64, json_type
from gateway.wire.protos import feature_pb2, input_pb2


def examples_input(doc: Mapping[str, Any]) -> Any:
    """The ``Input`` of a Classify/Regress body (``examples`` plus optional ``context``)."""
    inp = input_pb2.Input()
    has_context = "context" in doc
    if has_context:
        fill_example(doc["context"], inp.example_list_with_context.context)
    if "examples" not in doc:
        raise invalid(
            f"JSON Value: {debug(doc)} When method is classify, key 'examples' is expected and was not found"
        )
    items = doc["examples"]
    if not isinstance(items, list):
        raise invalid(f"JSON Value: {debug(doc)} Expecting 'examples' value to be an list/array")
    if not items:
        raise invalid(f"JSON Value: {debug(doc)} 'examples' value is an empty array")
    target = inp.example_list_with_context.examples if has_context else inp.example_list.examples
    for item in items:
        fill_example(item, target.add())
    return inp


def fill_example(value: Any, example: Any) -> None:
    if not isinstance(value, dict):
        raise invalid(f"Example must be JSON object but got JSON {json_type(value)}")
    for name, content in value.items():
        feature = feature_pb2.Feature()
        for item in content if isinstance(content, list) else [content]:
            _add_feature_value(item, name, feature)
        example.features.feature[name].CopyFrom(feature)


_KIND_NAMES = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64", None: "UNKNOWN"}


def _add_feature_value(value: Any, name: str, feature: Any) -> None:
    if value is None or isinstance(value, list) or (isinstance(value, dict) and not is_b64(value)):
        raise invalid(f"Feature: {name} has element with unexpected JSON type: {json_type(value)}")
    item: int | float | bytes
    if isinstance(value, bool):
        kind, item = "int64_list", int(value)
    elif isinstance(value, dict):
        kind, item = "bytes_list", decode_b64(value)
    elif isinstance(value, str):
        kind, item = "bytes_list", value.encode("utf-8")
    elif isinstance(value, float) or value > 2**64 - 1 or value < -(2**63):
        kind, item = "float_list", float(value)
    else:
        if value > 2**63 - 1:
            raise invalid(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        kind, item = "int64_list", value
    current = feature.WhichOneof("kind")
    if current not in (None, kind):
        raise invalid(f"Unexpected element type in feature: {name} expecting type: {_KIND_NAMES[current]}")
    getattr(feature, kind).value.append(item)


def classification_json(result: Any) -> str:
    if not result.classifications:
        raise invalid("Cannot convert empty ClassificationResults to JSON")
    rows = []
    for entry in result.classifications:
        classes = [
            f"[{json.dumps(c.label, ensure_ascii=False)}, {format_float32(c.score)}]" for c in entry.classes
        ]
        rows.append("[" + ", ".join(classes) + "]")
    return '{"results": [' + ", ".join(rows) + "]}"


def regression_json(result: Any) -> str:
    if not result.regressions:
        raise invalid("Cannot convert empty RegressionResults to JSON")
    return '{"results": [' + ", ".join(format_float32(r.value) for r in result.regressions) + "]}"
