"""TF-Serving's REST JSON: request bodies to tensors and examples, results back to JSON.

Rules (and error messages) are TF-Serving's ``json_tensor``:

* Predict takes either ``instances`` (row format: one entry per batch row; a
  plain value/list for a single input, objects keyed by input name otherwise)
  answered as ``predictions``, or ``inputs`` (columnar: the whole tensor, or an
  object of tensors) answered as ``outputs``. A single output is written
  without its name.
* DT_STRING values may be ``{"b64": "..."}``; outputs whose alias ends in
  ``_bytes`` are written that way.
* Floats are written in their shortest form that reads back to the same value,
  with a trailing ``.0`` on whole numbers; NaN and infinities as ``NaN``,
  ``Infinity``, ``-Infinity`` (which TF-Serving also accepts on input).

Classify/Regress bodies are in :mod:`gateway.graph_server.example_json`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from enum import Enum
from typing import Any

import numpy as np

from gateway.graph_server.errors import ServingError, invalid, unimplemented
from gateway.graph_server.servable import type_name
from gateway.wire.protos import types_pb2
from gateway.wire.tensors import NUMPY_OF

Array = np.ndarray[Any, Any]
_MAX_DEBUG = 256
_INT_RANGES = {
    types_pb2.DT_INT32: (-(2**31), 2**31 - 1),
    types_pb2.DT_INT16: (-(2**31), 2**31 - 1),
    types_pb2.DT_INT8: (-(2**31), 2**31 - 1),
    types_pb2.DT_UINT8: (-(2**31), 2**31 - 1),
    types_pb2.DT_INT64: (-(2**63), 2**63 - 1),
    types_pb2.DT_UINT32: (0, 2**32 - 1),
    types_pb2.DT_UINT64: (0, 2**64 - 1),
}


class Format(Enum):
    ROW = "instances"
    COLUMNAR = "inputs"


def debug(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)[:_MAX_DEBUG]


def json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def parse_body(body: bytes) -> dict[str, Any]:
    """The request document: a JSON object (NaN and Infinity allowed; trailing bytes ignored)."""
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise invalid(f"JSON Parse error: Invalid encoding in string. at offset: {e.start}") from e
    start = len(text) - len(text.lstrip())
    try:
        doc, _end = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError as e:
        raise invalid(f"JSON Parse error: {e.msg} at offset: {e.pos}") from e
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {debug(doc)} Is not object")
    return doc


def signature_name(doc: Mapping[str, Any]) -> str:
    value = doc.get("signature_name", "")
    if not isinstance(value, str):
        raise invalid(
            f"JSON Value: {debug(doc)} not formatted correctly. 'signature_name' key must be a string value."
        )
    return value


# -- JSON -> tensors ----------------------------------------------------
def is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def decode_b64(value: Any) -> bytes:
    if not is_b64(value):
        raise invalid(f"JSON Value: {debug(value)} not formatted correctly for base64 data")
    text = value["b64"]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise invalid("Unable to base64 decode") from e


def _type_error(value: Any, dtype: int) -> ServingError:
    return invalid(
        f"JSON Value: {debug(value)} Type: {json_type(value)} is not of expected type: {type_name(dtype)}"
    )


def _scalar(value: Any, dtype: int) -> Any:
    is_num = isinstance(value, (int, float)) and not isinstance(value, bool)
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        if not is_num:
            raise _type_error(value, dtype)
        return float(value)
    if dtype in _INT_RANGES:
        lo, hi = _INT_RANGES[dtype]
        if not (is_num and isinstance(value, int) and lo <= value <= hi):
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_BOOL:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_STRING:
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8")
    raise unimplemented(f"Conversion of JSON Value: {debug(value)} to type: {type_name(dtype)}")


def dense_shape(value: Any) -> list[int]:
    """A tensor's shape read down the first elements of nested lists."""
    dims = []
    while isinstance(value, list):
        dims.append(len(value))
        if not value:
            break
        value = value[0]
    return dims


def _fill(value: Any, level: int, shape: list[int], dtype: int, out: list[Any]) -> None:
    if not isinstance(value, list):
        if level != len(shape):
            raise invalid(
                f"JSON Value: {debug(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {len(shape)}"
            )
        if isinstance(value, dict):
            if dtype != types_pb2.DT_STRING:
                raise _type_error(value, dtype)
            out.append(decode_b64(value))
        else:
            out.append(_scalar(value, dtype))
        return
    if level >= len(shape):
        raise invalid(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise invalid(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    for v in value:
        _fill(v, level + 1, shape, dtype, out)


def to_array(values: list[Any], shape: list[int], dtype: int) -> Array:
    if dtype == types_pb2.DT_STRING:
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        return arr.reshape(shape)
    np_dtype = NUMPY_OF[dtype]
    if dtype in (types_pb2.DT_INT16, types_pb2.DT_INT8, types_pb2.DT_UINT8):
        return np.array(values, dtype=np.int64).astype(np_dtype).reshape(shape)  # wraps like a C cast
    return np.array(values, dtype=np_dtype).reshape(shape)


def decode_tensor(value: Any, dtype: int) -> Array:
    shape = dense_shape(value)
    values: list[Any] = []
    _fill(value, 0, shape, dtype, values)
    return to_array(values, shape, dtype)


def predict_inputs(
    doc: Mapping[str, Any], infos: Mapping[str, Any], signame: str
) -> tuple[Format, dict[str, Array]]:
    """Tensors from a Predict body, given the signature's input TensorInfos."""
    if not infos:
        raise invalid(f"Failed to get input map for signature: {signame or 'DEFAULT'}")
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise invalid(
            f"JSON Value: {debug(doc)} Not formatted correctly expecting only one of 'inputs' or "
            "'instances' keys to exist "
        )
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid(f"JSON Value: {debug(doc)} Expecting 'instances' to be an list/array")
        if not instances:
            raise invalid(f"JSON Value: {debug(doc)} No values in 'instances' array")
        return Format.ROW, _from_instances(instances, infos)
    if has_inputs:
        return Format.COLUMNAR, _from_inputs(doc["inputs"], infos)
    raise invalid("Missing 'inputs' or 'instances' key")


def _shape_str(shape: list[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


class _Column:
    def __init__(self, dtype: int) -> None:
        self.dtype = dtype
        self.values: list[Any] = []
        self.item_shape: list[int] | None = None
        self.item_size = 0

    def add(self, item: Any) -> None:
        shape = dense_shape(item)
        values: list[Any] = []
        _fill(item, 0, shape, self.dtype, values)
        if self.item_shape is None:
            self.item_shape, self.item_size = shape, len(values)
        elif len(values) != self.item_size:
            raise invalid(f"Expecting tensor size: {self.item_size} but got: {len(values)}")
        elif shape != self.item_shape:
            raise invalid(f"Expecting shape {_shape_str(self.item_shape)} but got: {_shape_str(shape)}")
        self.values.extend(values)


def _from_instances(instances: list[Any], infos: Mapping[str, Any]) -> dict[str, Array]:
    def is_object(v: Any) -> bool:
        return isinstance(v, dict) and not is_b64(v)

    if not isinstance(instances[0], dict) and len(infos) > 1:
        raise invalid(
            "instances is a plain list, but expecting list of objects as multiple input tensors "
            "required as per tensorinfo_map"
        )
    objects = is_object(instances[0])
    names = sorted(infos)
    columns: dict[str, _Column] = {}

    def add(name: str, item: Any) -> None:
        if name not in infos:
            raise invalid(f"JSON object: does not have named input: {name}")
        columns.setdefault(name, _Column(infos[name].dtype)).add(item)

    for i, elem in enumerate(instances):
        if objects:
            if not is_object(elem):
                raise invalid(f"Expecting object but got list at item {i} of input list")
            for name, item in elem.items():
                try:
                    add(name, item)
                except ServingError as e:
                    raise invalid(
                        f"Failed to process element: {i} key: {name} of 'instances' list. Error: {e}"
                    ) from e
            if set(elem) != set(names):
                raise invalid(
                    f"Failed to process element: {i} of 'instances' list. JSON object: {debug(elem)} "
                    f"keys must be equal to: {','.join(names)}"
                )
        else:
            if is_object(elem):
                raise invalid(f"Expecting value/list but got object at item {i} of input list")
            try:
                add(names[0], elem)
            except ServingError as e:
                raise invalid(f"Failed to process element: {i} of 'instances' list. Error: {e}") from e
    return {
        name: to_array(col.values, [len(instances), *(col.item_shape or [])], col.dtype)
        for name, col in columns.items()
    }


def _from_inputs(value: Any, infos: Mapping[str, Any]) -> dict[str, Array]:
    if not isinstance(value, dict) or is_b64(value):
        if len(infos) > 1:
            raise invalid(
                "inputs is a plain value/list, but expecting an object as multiple input tensors "
                "required as per tensorinfo_map"
            )
        name = next(iter(infos))
        return {name: decode_tensor(value, infos[name].dtype)}
    out = {}
    for name in sorted(infos):
        if name not in value:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        out[name] = decode_tensor(value[name], infos[name].dtype)
    return out


# -- tensors -> JSON ----------------------------------------------------
def format_float32(v: float) -> str:
    return _format_decimal(v, lambda s: float(np.float32(s)) == v, 9)


def format_float64(v: float) -> str:
    return _format_decimal(v, lambda s: float(s) == v, 17)


def _format_decimal(v: float, round_trips: Any, max_digits: int) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "-Infinity" if v < 0 else "Infinity"
    text = f"{v:g}"
    if not round_trips(text):
        text = f"{v:.{max_digits}g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _scalar_json(v: Any, kind: str, as_bytes: bool) -> str:
    if kind == "f32":
        return format_float32(v)
    if kind == "f64":
        return format_float64(v)
    if kind == "b":
        return "true" if v else "false"
    if kind == "s":
        raw = v if isinstance(v, bytes) else str(v).encode("utf-8")
        if as_bytes:
            return '{"b64": "' + base64.b64encode(raw).decode("ascii") + '"}'
        return json.dumps(raw.decode("utf-8", "replace"), ensure_ascii=False)
    return str(int(v))


def _kind(arr: Array) -> str:
    if arr.dtype.kind in "OSU":
        return "s"
    if arr.dtype == np.float64:
        return "f64"
    if arr.dtype.kind == "f":
        return "f32"
    return "b" if arr.dtype.kind == "b" else "i"


def tensor_json(arr: Array, as_bytes: bool = False) -> str:
    kind = _kind(arr)
    items = arr.tolist() if kind != "f32" else arr.astype(np.float32).tolist()

    def walk(node: Any) -> str:
        if isinstance(node, list):
            return "[" + ", ".join(walk(n) for n in node) + "]"
        return _scalar_json(node, kind, as_bytes)

    return walk(items)


def _is_bytes_output(name: str, arr: Array) -> bool:
    return name.endswith("_bytes") and arr.dtype.kind in "OSU"


def predict_json(outputs: Mapping[str, Array], fmt: Format) -> str:
    if not outputs:
        raise invalid("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if fmt is Format.COLUMNAR:
        if len(names) == 1:
            n = names[0]
            return '{"outputs": ' + tensor_json(outputs[n], _is_bytes_output(n, outputs[n])) + "}"
        parts = [
            f"{json.dumps(n)}: {tensor_json(outputs[n], _is_bytes_output(n, outputs[n]))}" for n in names
        ]
        return '{"outputs": {' + ", ".join(parts) + "}}"
    batch = -1
    for n in names:
        arr = outputs[n]
        if arr.ndim == 0:
            raise invalid(f"Tensor name: {n} has no shape information ")
        if batch >= 0 and arr.shape[0] != batch:
            raise invalid(f"Tensor name: {n} has inconsistent batch size: {arr.shape[0]} expecting: {batch}")
        batch = arr.shape[0]
    rows = []
    for i in range(batch):  # [i, ...] keeps a 0-d array even for object (string) tensors
        if len(names) == 1:
            rows.append(tensor_json(outputs[names[0]][i, ...], _is_bytes_output(names[0], outputs[names[0]])))
        else:
            fields = [
                f"{json.dumps(n)}: {tensor_json(outputs[n][i, ...], _is_bytes_output(n, outputs[n]))}"
                for n in names
            ]
            rows.append("{" + ", ".join(fields) + "}")
    return '{"predictions": [' + ", ".join(rows) + "]}"
