"""numpy <-> ``tensorflow.TensorProto`` without TensorFlow.

Numeric tensors travel as little-endian ``tensor_content`` bytes (what
``tf.make_tensor_proto`` produces for arrays, and the cheapest form to build
and read); strings use ``string_val``. Reading also accepts the typed
``*_val`` repeated fields that other clients send, with TensorFlow's rule that
fewer values than elements repeat the last one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gateway.wire.protos import tensor_pb2, tensor_shape_pb2, types_pb2

DT = types_pb2.DataType

# DataType -> numpy dtype (little-endian, as TF lays out tensor_content).
NUMPY_OF: dict[int, np.dtype[Any]] = {
    types_pb2.DT_FLOAT: np.dtype("<f4"),
    types_pb2.DT_DOUBLE: np.dtype("<f8"),
    types_pb2.DT_INT32: np.dtype("<i4"),
    types_pb2.DT_UINT8: np.dtype("u1"),
    types_pb2.DT_INT16: np.dtype("<i2"),
    types_pb2.DT_INT8: np.dtype("i1"),
    types_pb2.DT_INT64: np.dtype("<i8"),
    types_pb2.DT_BOOL: np.dtype("?"),
    types_pb2.DT_UINT16: np.dtype("<u2"),
    types_pb2.DT_HALF: np.dtype("<f2"),
    types_pb2.DT_UINT32: np.dtype("<u4"),
    types_pb2.DT_UINT64: np.dtype("<u8"),
}
DTYPE_OF: dict[np.dtype[Any], int] = {v.newbyteorder("="): k for k, v in NUMPY_OF.items()}

# Which repeated field carries each dtype's values when tensor_content is empty.
_VAL_FIELD: dict[int, str] = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_STRING: "string_val",
}


class TensorError(ValueError):
    """A TensorProto that cannot be turned into an array (maps to InvalidArgument)."""


def dtype_name(dtype: int) -> str:
    return str(DT.Name(dtype))


def make_shape(dims: Sequence[int]) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in dims]
    )


def to_proto(value: Any, dtype: int | None = None) -> tensor_pb2.TensorProto:
    """Build a TensorProto from an array-like; ``dtype`` forces a TF dtype."""
    proto = tensor_pb2.TensorProto()
    write_proto(proto, value, dtype)
    return proto


def write_proto(proto: tensor_pb2.TensorProto, value: Any, dtype: int | None = None) -> None:
    """Fill an empty TensorProto in place (e.g. ``request.inputs[alias]``): no copy of the bytes."""
    if dtype == types_pb2.DT_STRING or _is_stringy(value):
        arr = np.asarray(value, dtype=object)
        proto.dtype = types_pb2.DT_STRING
        proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in arr.shape)
        proto.string_val.extend(_as_bytes(v) for v in arr.reshape(-1))
        return
    arr = np.asarray(value)
    if dtype is None:
        key = arr.dtype.newbyteorder("=")
        if key not in DTYPE_OF:
            raise TensorError(f"no TensorFlow dtype for numpy dtype {arr.dtype}")
        dtype = DTYPE_OF[key]
    np_dtype = NUMPY_OF.get(dtype)
    if np_dtype is None:
        raise TensorError(f"unsupported dtype {dtype_name(dtype)}")
    proto.dtype = dtype
    proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in arr.shape)
    # astype(copy=False) keeps 0-d arrays 0-d (ascontiguousarray would make them 1-d).
    proto.tensor_content = arr.astype(np_dtype, copy=False).tobytes()


def fill_proto_fields(proto: tensor_pb2.TensorProto, value: np.ndarray[Any, Any]) -> None:
    """Write ``value`` into ``proto`` using the typed ``*_val`` fields, not ``tensor_content``.

    This is the layout TF-Serving answers Predict with (``Tensor::AsProtoField``),
    so clients that read ``outputs[...].float_val`` directly see what they expect.
    """
    arr = np.asarray(value)
    if arr.dtype.kind in "OSU":
        dtype = types_pb2.DT_STRING
        values: Any = [_as_bytes(v) for v in arr.reshape(-1)]
    else:
        key = arr.dtype.newbyteorder("=")
        if key not in DTYPE_OF:
            raise TensorError(f"no TensorFlow dtype for numpy dtype {arr.dtype}")
        dtype = DTYPE_OF[key]
        flat = arr.reshape(-1)
        values = flat.view(np.uint16).tolist() if dtype == types_pb2.DT_HALF else flat.tolist()
    proto.dtype = dtype
    dims = proto.tensor_shape.dim
    del dims[:]
    for d in arr.shape:
        dims.add().size = d
    getattr(proto, _VAL_FIELD[dtype]).extend(values)


def shape_of(proto: tensor_pb2.TensorProto) -> tuple[int, ...]:
    shape = proto.tensor_shape
    if shape.unknown_rank:
        raise TensorError("tensor shape has unknown rank")
    dims = tuple([d.size for d in shape.dim])
    if dims and min(dims) < 0:
        raise TensorError(f"tensor shape {list(dims)} has a negative dimension")
    return dims


def to_numpy(proto: tensor_pb2.TensorProto) -> np.ndarray[Any, Any]:
    """Read a TensorProto into a numpy array (strings come back as ``object`` of bytes)."""
    shape = shape_of(proto)
    size = math.prod(shape)
    dtype = proto.dtype
    if dtype == types_pb2.DT_STRING:
        values: Any = list(proto.string_val)
        return _fill(np.array(values, dtype=object), size, shape, np.dtype(object))
    np_dtype = NUMPY_OF.get(dtype)
    if np_dtype is None:
        raise TensorError(f"unsupported dtype {dtype_name(dtype)}")
    content = proto.tensor_content
    if content:
        if len(content) != size * np_dtype.itemsize:
            raise TensorError(
                f"tensor_content has {len(content)} bytes, "
                f"shape {list(shape)} of {dtype_name(dtype)} needs {size * np_dtype.itemsize}"
            )
        return np.frombuffer(content, dtype=np_dtype).reshape(shape)
    field = getattr(proto, _VAL_FIELD[dtype])
    if dtype == types_pb2.DT_HALF:
        raw = np.array(field, dtype=np.uint16).view(np.float16)
    else:
        raw = np.array(field, dtype=np_dtype)
    return _fill(raw, size, shape, np_dtype)


def _fill(
    raw: np.ndarray[Any, Any], size: int, shape: tuple[int, ...], dtype: np.dtype[Any]
) -> np.ndarray[Any, Any]:
    n = raw.shape[0]
    if n == size:
        return raw.astype(dtype, copy=False).reshape(shape)
    if n > size:
        raise TensorError(f"{n} values given for shape {list(shape)} ({size} elements)")
    out = np.empty(size, dtype=dtype)
    if n == 0:
        out[:] = b"" if dtype == np.dtype(object) else 0
    else:
        out[:n] = raw
        out[n:] = raw[-1]
    return out.reshape(shape)


def _is_stringy(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "OSU"
    probe = value
    while isinstance(probe, (list, tuple)) and probe:
        probe = probe[0]
    return isinstance(probe, (str, bytes))


def _as_bytes(v: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    raise TensorError(f"expected a string value, got {type(v).__name__}")
