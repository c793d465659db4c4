"""numpy <-> TensorProto by hand, checked against TensorFlow's own encoder where it matters."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.wire.protos import tensor_pb2, types_pb2
from gateway.wire.tensors import TensorError, make_shape, to_numpy, to_proto


@pytest.mark.parametrize(
    "dtype", ["float32", "float64", "int32", "int64", "int8", "uint8", "bool", "float16"]
)
def test_round_trip_numeric(dtype: str) -> None:
    arr = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    back = to_numpy(to_proto(arr))
    assert back.dtype == arr.dtype and back.shape == (3, 4)
    np.testing.assert_array_equal(back, arr)


def test_round_trip_strings() -> None:
    proto = to_proto([["a", "bé"], ["", "z"]])
    assert proto.dtype == types_pb2.DT_STRING
    back = to_numpy(proto)
    assert back.shape == (2, 2) and back[0, 1] == "bé".encode()


def test_typed_fields_and_tensorflow_fill_rule() -> None:
    p = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=make_shape([2, 2]), float_val=[1.0, 2.0]
    )
    np.testing.assert_array_equal(to_numpy(p), [[1.0, 2.0], [2.0, 2.0]])
    z = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT64, tensor_shape=make_shape([3]))
    np.testing.assert_array_equal(to_numpy(z), [0, 0, 0])


def test_bad_tensors_are_rejected() -> None:
    with pytest.raises(TensorError, match="values given"):
        to_numpy(
            tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=make_shape([1]), float_val=[1, 2])
        )
    with pytest.raises(TensorError, match="bytes"):
        to_numpy(
            tensor_pb2.TensorProto(
                dtype=types_pb2.DT_FLOAT, tensor_shape=make_shape([2]), tensor_content=b"abc"
            )
        )
    with pytest.raises(TensorError, match="negative"):
        to_numpy(tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=make_shape([-1])))
