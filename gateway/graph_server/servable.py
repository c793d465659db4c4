"""One loaded model version: a TF session over the SavedModel's MetaGraph.

Loaded the way TF-Serving's SavedModelBundle loads it (``tf.compat.v1`` loader:
restore variables, run the main/init op with asset paths fed in), which also
accepts TF1 exports that ``tf.saved_model.load`` refuses. Signatures run through
cached ``Session.make_callable`` handles: one per (signature, inputs, outputs).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc
import numpy as np
import tensorflow as tf

from gateway.graph_server.errors import ServingError, invalid
from gateway.protos import meta_graph_pb2
from gateway.tensors import NUMPY_OF

tf1 = tf.compat.v1
tf1.logging.set_verbosity(tf1.logging.ERROR)

DEFAULT_SIGNATURE = "serving_default"
SERVE_TAG = "serve"


def session_config(intra_op: int = 0, inter_op: int = 0) -> Any:
    return tf1.ConfigProto(
        allow_soft_placement=True,  # GPU-placed exports still run on a CPU-only host
        intra_op_parallelism_threads=intra_op,
        inter_op_parallelism_threads=inter_op,
    )


class Servable:
    """A model version ready to run its signatures."""

    def __init__(self, name: str, version: int, path: Path, config: Any = None) -> None:
        self.name = name
        self.version = version
        self.path = path
        self._graph = tf.Graph()
        self._session = tf1.Session(graph=self._graph, config=config or session_config())
        try:
            meta = tf1.saved_model.loader.load(self._session, [SERVE_TAG], str(path))
        except Exception:
            self._session.close()
            raise
        # Re-parse into our own message class so callers never touch TF's copies.
        self.meta_graph = meta_graph_pb2.MetaGraphDef.FromString(meta.SerializeToString())
        self.signatures: Mapping[str, Any] = self.meta_graph.signature_def
        self._callables: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Any] = {}
        self._lock = threading.Lock()

    def signature(self, name: str) -> tuple[str, Any]:
        key = name or DEFAULT_SIGNATURE
        sig = self.signatures.get(key)
        if sig is None:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND, f'Serving signature name: "{key}" not found in signature def'
            )
        return key, sig

    def run(
        self,
        signature_name: str,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        output_filter: Sequence[str] = (),
    ) -> tuple[str, dict[str, np.ndarray[Any, Any]]]:
        """Run one signature; returns the signature name used and the named outputs."""
        key, sig = self.signature(signature_name)
        self.check_inputs(sig, inputs)
        outputs = list(output_filter) or sorted(sig.outputs)
        for alias in outputs:
            if alias not in sig.outputs:
                raise invalid(f"output tensor alias not found in signature: {alias}")
        in_aliases = tuple(sorted(inputs))
        fn = self._callable(key, sig, in_aliases, tuple(outputs))
        try:
            values = fn(*[inputs[a] for a in in_aliases])
        except tf.errors.OpError as e:
            raise ServingError(_grpc_code(e), e.message) from e
        return key, dict(zip(outputs, values, strict=True))

    def check_inputs(self, sig: Any, inputs: Mapping[str, Any]) -> None:
        expected = set(sig.inputs)
        given = set(inputs)
        if given != expected:
            missing = sorted(expected - given)
            extra = sorted(given - expected)
            raise invalid(
                f"input size does not match signature: {len(given)}!={len(expected)} len({sorted(given)}) "
                f"!= len({sorted(expected)}). Sent extra: {extra}. Missing but required: {missing}."
            )
        for alias, value in inputs.items():
            want = NUMPY_OF.get(sig.inputs[alias].dtype)
            if want is not None and value.dtype.kind != "O" and value.dtype != want:
                raise invalid(f"Expects arg[{alias}] to be {want.name} but {value.dtype.name} is provided")

    def _callable(self, key: str, sig: Any, ins: tuple[str, ...], outs: tuple[str, ...]) -> Any:
        ck = (key, ins, outs)
        fn = self._callables.get(ck)
        if fn is None:
            with self._lock:
                fn = self._callables.get(ck)
                if fn is None:
                    fn = self._session.make_callable(
                        [sig.outputs[a].name for a in outs],
                        feed_list=[sig.inputs[a].name for a in ins],
                    )
                    self._callables[ck] = fn
        return fn

    def close(self) -> None:
        self._callables.clear()
        self._session.close()


_TF_TO_GRPC = {
    "InvalidArgumentError": "INVALID_ARGUMENT",
    "NotFoundError": "NOT_FOUND",
    "FailedPreconditionError": "FAILED_PRECONDITION",
    "OutOfRangeError": "OUT_OF_RANGE",
    "ResourceExhaustedError": "RESOURCE_EXHAUSTED",
    "UnimplementedError": "UNIMPLEMENTED",
    "DeadlineExceededError": "DEADLINE_EXCEEDED",
    "UnavailableError": "UNAVAILABLE",
    "AbortedError": "ABORTED",
    "CancelledError": "CANCELLED",
    "AlreadyExistsError": "ALREADY_EXISTS",
    "PermissionDeniedError": "PERMISSION_DENIED",
    "DataLossError": "DATA_LOSS",
}


def _grpc_code(e: Exception) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, _TF_TO_GRPC.get(type(e).__name__, "INTERNAL"))
