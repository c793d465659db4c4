"""How a Predict is executed on a servable: directly, or answered without running (echo).

The runner is the seam where server-side batching plugs in: it receives one
request's inputs and returns that request's outputs, whatever it does between.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from gateway.graph_server.errors import invalid
from gateway.tensors import NUMPY_OF

Arrays = Mapping[str, np.ndarray[Any, Any]]


class Runner(Protocol):
    def predict(
        self, servable: Any, signature_name: str, inputs: Arrays, output_filter: Sequence[str]
    ) -> tuple[str, dict[str, np.ndarray[Any, Any]]]: ...


class DirectRunner:
    """One session run per request."""

    def predict(
        self, servable: Any, signature_name: str, inputs: Arrays, output_filter: Sequence[str]
    ) -> tuple[str, dict[str, np.ndarray[Any, Any]]]:
        return servable.run(signature_name, inputs, output_filter)  # type: ignore[no-any-return]


class EchoRunner:
    """Benchmark floor: same request handling, zeros instead of a session run.

    Each requested output gets the signature's dtype and static shape, with
    unknown dimensions taken from the first input's batch size.
    """

    def predict(
        self, servable: Any, signature_name: str, inputs: Arrays, output_filter: Sequence[str]
    ) -> tuple[str, dict[str, np.ndarray[Any, Any]]]:
        key, sig = servable.signature(signature_name)
        servable.check_inputs(sig, inputs)
        batch = next((v.shape[0] for v in inputs.values() if v.ndim), 1)
        outs = list(output_filter) or sorted(sig.outputs)
        result = {}
        for alias in outs:
            if alias not in sig.outputs:
                raise invalid(f"output tensor alias not found in signature: {alias}")
            info = sig.outputs[alias]
            dims = [batch if d.size < 0 else d.size for d in info.tensor_shape.dim]
            result[alias] = np.zeros(dims, dtype=NUMPY_OF.get(info.dtype, np.float32))
        return key, result
