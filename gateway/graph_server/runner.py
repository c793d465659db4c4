"""How a Predict is executed on a servable: directly, batched, or answered without running (echo).

The runner is the seam where server-side batching plugs in: it receives one
request's inputs and returns that request's outputs, whatever it does between.
Model warmup goes through the same runner, so warmup also exercises batching.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from gateway.wire.tensors import NUMPY_OF

Arrays = Mapping[str, np.ndarray[Any, Any]]
Outputs = dict[str, np.ndarray[Any, Any]]


@dataclass(frozen=True)
class PreparedPredict:
    """A validated Predict: what to feed (by alias, defaults filled in) and what to fetch."""

    signature_name: str
    signature: Any
    inputs: dict[str, np.ndarray[Any, Any]]
    outputs: tuple[str, ...]


class Runner(Protocol):
    """Executes one Predict against one servable.

    ``timeout_s`` bounds the whole call (queueing included); ``None`` waits as
    long as it takes. Returns the signature key used and the named outputs.
    """

    def predict(
        self,
        servable: Any,
        signature_name: str,
        inputs: Arrays,
        output_filter: Sequence[str],
        timeout_s: float | None = None,
    ) -> tuple[str, Outputs]: ...

    def close(self) -> None: ...


def timeout_ms(timeout_s: float | None) -> int:
    return 0 if timeout_s is None else max(1, int(timeout_s * 1000))


class DirectRunner:
    """One session run per request."""

    def predict(
        self,
        servable: Any,
        signature_name: str,
        inputs: Arrays,
        output_filter: Sequence[str],
        timeout_s: float | None = None,
    ) -> tuple[str, Outputs]:
        prepared = servable.prepare_predict(signature_name, inputs, output_filter)
        return prepared.signature_name, servable.run_prepared(prepared, timeout_ms(timeout_s))

    def close(self) -> None:
        pass


class EchoRunner:
    """Benchmark floor: same request handling and validation, zeros instead of a session run.

    Each requested output gets the signature's dtype and static shape, with
    unknown dimensions taken from the first input's batch size.
    """

    def predict(
        self,
        servable: Any,
        signature_name: str,
        inputs: Arrays,
        output_filter: Sequence[str],
        timeout_s: float | None = None,
    ) -> tuple[str, Outputs]:
        prepared = servable.prepare_predict(signature_name, inputs, output_filter)
        batch = next((v.shape[0] for v in prepared.inputs.values() if v.ndim), 1)
        result = {}
        for alias in prepared.outputs:
            info = prepared.signature.outputs[alias]
            dims = [batch if d.size < 0 else d.size for d in info.tensor_shape.dim]
            np_dtype = NUMPY_OF.get(info.dtype)
            result[alias] = np.zeros(dims, np_dtype) if np_dtype else np.full(dims, b"", dtype=object)
        return prepared.signature_name, result

    def close(self) -> None:
        pass
