"""One loaded model version: a TF session over the SavedModel's MetaGraph.

Loaded the way TF-Serving's SavedModelBundle loads it (``tf.compat.v1`` loader:
restore variables, run the main/init op with asset paths fed in), which also
accepts TF1 exports that ``tf.saved_model.load`` refuses.

Signatures run through session *callables* (``CallableOptions``: feed and fetch
tensor names fixed once, then executed straight in the C++ session), cached per
(feeds, fetches, timeout). Like TF-Serving's ``Session::Run`` this feeds tensors
without checking them against the placeholder's static shape: a ``[3]`` tensor
fed to an ``x: [-1, 1]`` input runs, as TF-Serving's own REST tests expect.
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
from tensorflow.core.protobuf import config_pb2

from gateway.graph_server.errors import ServingError, failed_precondition, invalid
from gateway.graph_server.runner import PreparedPredict
from gateway.wire.protos import meta_graph_pb2, types_pb2
from gateway.wire.tensors import DTYPE_OF, NUMPY_OF, TensorError, dtype_name, to_numpy

tf1 = tf.compat.v1
tf1.logging.set_verbosity(tf1.logging.ERROR)

DEFAULT_SIGNATURE = "serving_default"
SERVE_TAG = "serve"
Arrays = Mapping[str, np.ndarray[Any, Any]]


def session_config(intra_op: int = 0, inter_op: int = 0) -> Any:
    return tf1.ConfigProto(
        allow_soft_placement=True,  # GPU-placed exports still run on a CPU-only host
        intra_op_parallelism_threads=intra_op,
        inter_op_parallelism_threads=inter_op,
    )


def type_name(dtype: int) -> str:
    """TensorFlow's short type name (``float``, ``int64``, ``string``) of a DataType."""
    return dtype_name(dtype).removeprefix("DT_").lower()


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
        self._callables: dict[tuple[tuple[str, ...], tuple[str, ...], int], Any] = {}
        self._plans: dict[str, _Plan] = {}
        self._lock = threading.Lock()

    def find_signature(self, name: str) -> tuple[str, Any]:
        """(key, SignatureDef or None); an empty name means ``serving_default``."""
        key = name or DEFAULT_SIGNATURE
        return key, self.signatures.get(key)

    # -- Predict -------------------------------------------------------
    def prepare_predict(
        self, signature_name: str, inputs: Arrays, output_filter: Sequence[str] = ()
    ) -> PreparedPredict:
        """Validate a Predict against its signature, with TF-Serving's checks and messages."""
        plan = self._plan(signature_name)
        if inputs.keys() == plan.alias_set:  # the usual request: every input, no defaults needed
            feeds = {alias: inputs[alias] for alias in plan.aliases}
            for i, (alias, want) in enumerate(zip(plan.aliases, plan.dtypes, strict=True)):
                value = feeds[alias]
                if want is None or value.dtype != want:
                    _check_dtype(i, plan.signature.inputs[alias].dtype, value)
        else:
            feeds = self._feeds(plan.signature, inputs)
        outputs = plan.outputs_for(output_filter)
        return PreparedPredict(plan.key, plan.signature, feeds, outputs)

    def run_prepared(self, prepared: PreparedPredict, timeout_ms: int = 0) -> dict[str, np.ndarray[Any, Any]]:
        plan = self._plan(prepared.signature_name)
        values = self.run_tensors(
            plan.feed_names,
            [prepared.inputs[a] for a in plan.aliases],
            plan.fetch_names(prepared.outputs),
            timeout_ms,
        )
        return dict(zip(prepared.outputs, values, strict=True))

    def predict(
        self, signature_name: str, inputs: Arrays, output_filter: Sequence[str] = (), timeout_ms: int = 0
    ) -> tuple[str, dict[str, np.ndarray[Any, Any]]]:
        """Run one signature; returns the signature key used and the named outputs."""
        prepared = self.prepare_predict(signature_name, inputs, output_filter)
        return prepared.signature_name, self.run_prepared(prepared, timeout_ms)

    def _plan(self, signature_name: str) -> _Plan:
        key = signature_name or DEFAULT_SIGNATURE
        plan = self._plans.get(key)
        if plan is None:
            sig = self.signatures.get(key)
            if sig is None:
                raise failed_precondition(f'Serving signature key "{key}" not found.')
            plan = self._plans.setdefault(key, _Plan(key, sig))
        return plan

    def _feeds(self, sig: Any, inputs: Arrays) -> dict[str, np.ndarray[Any, Any]]:
        expected, given = set(sig.inputs), set(inputs)
        if len(given) > len(expected) or (len(given) < len(expected) and not sig.defaults):
            raise invalid(
                f"input size does not match signature: {len(given)}!={len(expected)} "
                f"len({{{','.join(sorted(given))}}}) != len({{{','.join(sorted(expected))}}}). "
                f"Sent extra: {{{','.join(sorted(given - expected))}}}. "
                f"Missing but required: {{{','.join(sorted(expected - given))}}}."
            )
        for alias in sorted(given - expected):
            raise invalid(
                f"input tensor alias not found in signature: {alias}. "
                f"Inputs expected to be in the set {{{','.join(sorted(expected))}}}."
            )
        feeds: dict[str, np.ndarray[Any, Any]] = {}
        for alias in sorted(expected):
            if alias in inputs:
                feeds[alias] = inputs[alias]
            elif alias in sig.defaults:
                feeds[alias] = to_numpy(sig.defaults[alias])
            else:
                raise invalid(f"Missing input '{alias}' and the signature has no default value for it")
        for i, alias in enumerate(sorted(feeds)):
            _check_dtype(i, sig.inputs[alias].dtype, feeds[alias])
        return feeds

    # -- raw execution -------------------------------------------------
    def run_tensors(
        self,
        feed_names: Sequence[str],
        feed_values: Sequence[np.ndarray[Any, Any]],
        fetch_names: Sequence[str],
        timeout_ms: int = 0,
    ) -> list[np.ndarray[Any, Any]]:
        """Feed tensors by graph name and fetch others; TF errors become ServingErrors."""
        fn = self._callable(tuple(feed_names), tuple(fetch_names), timeout_ms)
        try:
            return list(fn(*feed_values))
        except tf.errors.OpError as e:
            raise ServingError(grpc_code(e), e.message) from e
        except (TypeError, ValueError) as e:  # a feed numpy cannot hand to TF as that dtype
            raise invalid(str(e)) from e

    def _callable(self, feeds: tuple[str, ...], fetches: tuple[str, ...], timeout_ms: int) -> Any:
        ck = (feeds, fetches, timeout_ms)
        fn = self._callables.get(ck)
        if fn is None:
            with self._lock:
                fn = self._callables.get(ck)
                if fn is None:
                    opts = config_pb2.CallableOptions(feed=list(feeds), fetch=list(fetches))
                    if timeout_ms > 0:
                        opts.run_options.timeout_in_ms = timeout_ms
                    try:
                        fn = self._session._make_callable_from_options(opts)
                    except (tf.errors.OpError, ValueError, KeyError) as e:
                        raise ServingError(
                            grpc.StatusCode.INTERNAL, f"cannot build the signature: {e}"
                        ) from e
                    self._callables[ck] = fn
        return fn

    def close(self) -> None:
        with self._lock:
            self._callables.clear()  # releases the handles while the session is still open
        self._session.close()


class _Plan:
    """What every Predict on one signature needs, worked out once instead of per request.

    Feeds are always every input alias in sorted order (defaults filled in), so
    their graph names are fixed; fetch names are remembered per output selection.
    """

    def __init__(self, key: str, sig: Any) -> None:
        self.key = key
        self.signature = sig
        self.aliases = tuple(sorted(sig.inputs))
        self.alias_set = frozenset(self.aliases)
        self.feed_names = tuple(sig.inputs[a].name for a in self.aliases)
        # None where numpy has no such dtype (strings): those always take the full check.
        self.dtypes = tuple(NUMPY_OF.get(sig.inputs[a].dtype) for a in self.aliases)
        self.all_outputs = tuple(sorted(sig.outputs))
        self._fetches: dict[tuple[str, ...], tuple[str, ...]] = {}

    def outputs_for(self, output_filter: Sequence[str]) -> tuple[str, ...]:
        if not output_filter:
            return self.all_outputs
        if len(output_filter) == 1 and output_filter[0] in self.signature.outputs:
            return (output_filter[0],)
        return _output_aliases(self.signature, output_filter)

    def fetch_names(self, outputs: tuple[str, ...]) -> tuple[str, ...]:
        names = self._fetches.get(outputs)
        if names is None:
            names = self._fetches.setdefault(outputs, tuple(self.signature.outputs[a].name for a in outputs))
        return names


def _output_aliases(sig: Any, output_filter: Sequence[str]) -> tuple[str, ...]:
    if not output_filter:
        return tuple(sorted(sig.outputs))
    seen: set[str] = set()
    for alias in output_filter:
        if alias not in sig.outputs:
            raise invalid(
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {{{','.join(sorted(sig.outputs))}}}."
            )
        if alias in seen:
            raise invalid(f"duplicate output tensor alias: {alias}")
        seen.add(alias)
    return tuple(output_filter)


def _check_dtype(index: int, want: int, value: np.ndarray[Any, Any]) -> None:
    if want == types_pb2.DT_STRING:
        ok = value.dtype.kind in "OSU"
    else:
        np_want = NUMPY_OF.get(want)
        ok = np_want is None or value.dtype == np_want
    if not ok:
        raise invalid(
            f"Expects arg[{index}] to be {type_name(want)} but {_numpy_type_name(value)} is provided"
        )


def _numpy_type_name(value: np.ndarray[Any, Any]) -> str:
    if value.dtype.kind in "OSU":
        return "string"
    dt = DTYPE_OF.get(value.dtype.newbyteorder("="))
    return type_name(dt) if dt is not None else str(value.dtype)


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
    "InternalError": "INTERNAL",
    "UnauthenticatedError": "UNAUTHENTICATED",
}


def grpc_code(e: BaseException) -> grpc.StatusCode:
    """The gRPC status of a TensorFlow error (or of a load failure)."""
    if isinstance(e, ServingError):
        return e.code
    if isinstance(e, (FileNotFoundError, OSError)) and not isinstance(e, tf.errors.OpError):
        return grpc.StatusCode.NOT_FOUND
    return getattr(grpc.StatusCode, _TF_TO_GRPC.get(type(e).__name__, "UNKNOWN"))


__all__ = ["DEFAULT_SIGNATURE", "PreparedPredict", "Servable", "TensorError", "grpc_code", "session_config"]
