"""Stage 4: call the graph service (TF-Serving's ``PredictionService``) over gRPC.

No TensorFlow: requests and responses are built and read with the generated
message classes and ``gateway.wire.tensors``. One channel per worker process, created
lazily after gunicorn forks; several targets are balanced with gRPC's
``round_robin`` policy. Every call carries the spec's deadline and is retried
once, only on UNAVAILABLE (the call never reached a server that could run it).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from gateway import errors
from gateway.wire.protos import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from gateway.wire.tensors import to_numpy, write_proto

_STATE_NAMES = {0: "UNKNOWN", 10: "START", 20: "LOADING", 30: "AVAILABLE", 40: "UNLOADING", 50: "END"}


@dataclass(frozen=True, slots=True)
class GraphVersion:
    """One version as the graph reports it (GetModelStatus)."""

    state: str  # START, LOADING, AVAILABLE, UNLOADING, END
    error: str = ""  # the graph's error message (a version that failed to load ends with one)


_OPTIONS = [
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.enable_retries", 0),  # we retry ourselves, once, on UNAVAILABLE only
    ("grpc.keepalive_time_ms", 30000),
    # Only the filters a plain unary call needs (no channelz, census, ...): ~20% less CPU per
    # call here. Deadlines are still enforced by the call itself (tests/test_failures.py).
    ("grpc.minimal_stack", 1),
    # A graph that went away is looked for again within a second once it is back (gRPC's own
    # reconnect backoff grows to two minutes), so the circuit's probe meets it soon.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def channel_target(targets: list[str]) -> str:
    """A single gRPC target for one or many ``host:port`` addresses.

    IP literals become a static ``ipv4:``/``ipv6:`` list; a single host name
    uses ``dns:///`` so a headless Kubernetes Service spreads over its pods.
    """
    if len(targets) == 1 and not _is_ip(targets[0]):
        return f"dns:///{targets[0]}"
    if all(_is_ip(t) for t in targets):
        family = "ipv6" if any(_host(t).count(":") for t in targets) else "ipv4"
        return f"{family}:" + ",".join(targets)
    raise errors.ConfigError(
        f"graph targets {targets}: several targets must be IP addresses; "
        "for host names use one DNS name that resolves to every replica"
    )


def _host(target: str) -> str:
    host = target.rsplit(":", 1)[0]
    return host.strip("[]")


def _is_ip(target: str) -> bool:
    try:
        ipaddress.ip_address(_host(target))
    except ValueError:
        return False
    return True


class GraphClient:
    """Predict and status calls against one model on the graph service."""

    def __init__(self, targets: list[str], model_name: str, signature: str, deadline_s: float) -> None:
        self.target = channel_target(targets)
        self.model_name = model_name
        self.signature = signature
        self.deadline_s = deadline_s
        self._channel: grpc.Channel | None = None
        self._lock = threading.Lock()

    def _stubs(self) -> tuple[Any, Any]:
        if self._channel is None:
            with self._lock:
                if self._channel is None:
                    self._channel = grpc.insecure_channel(self.target, options=_OPTIONS)
                    self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
                    self._status = model_service_pb2_grpc.ModelServiceStub(self._channel)
        return self._predict, self._status

    def predict(
        self,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        output: str,
        version: int,
        timeout_s: float | None = None,
    ) -> np.ndarray[Any, Any]:
        """Run the signature pinned to ``version`` (within ``timeout_s``, default the deadline);
        returns the ``output`` tensor."""
        stub, _ = self._stubs()
        req = predict_pb2.PredictRequest()
        spec = req.model_spec
        spec.name = self.model_name
        spec.signature_name = self.signature
        spec.version.value = version
        for alias, value in inputs.items():
            write_proto(req.inputs[alias], value)
        req.output_filter.append(output)
        try:
            resp = self._call(stub.Predict, req, timeout_s)
        except errors.NotFound as e:
            # The logic tier pinned a version the graph does not serve: the tiers disagree for a
            # moment (a version leaving, a graph restarting). The server's problem, not the caller's.
            raise errors.GraphVersionMissing(version, e.msg) from e
        if resp.model_spec.version.value != version:
            raise errors.GraphError(
                f"graph answered with version {resp.model_spec.version.value}, expected {version}"
            )
        if output not in resp.outputs:
            raise errors.GraphError(f"graph response has no output {output!r}")
        return to_numpy(resp.outputs[output])

    def version_states(self) -> dict[int, str]:
        """Every version the graph knows for this model, with its state name."""
        return {v: s.state for v, s in self.versions().items()}

    def versions(self) -> dict[int, GraphVersion]:
        """Every version the graph knows for this model: state and error message."""
        _, stub = self._stubs()
        req = get_model_status_pb2.GetModelStatusRequest()
        req.model_spec.name = self.model_name
        resp = self._call(stub.GetModelStatus, req)
        return {
            int(s.version): GraphVersion(_STATE_NAMES.get(s.state, str(s.state)), s.status.error_message)
            for s in resp.model_version_status
        }

    def _call(self, method: Any, req: Any, timeout_s: float | None = None) -> Any:
        """The call within the deadline; once more on UNAVAILABLE, within what is left of it."""
        deadline = time.monotonic() + (self.deadline_s if timeout_s is None else timeout_s)
        for attempt in (1, 2):
            try:
                return method(req, timeout=max(deadline - time.monotonic(), 0.001))
            except grpc.RpcError as e:
                code = e.code()
                if code == grpc.StatusCode.UNAVAILABLE and attempt == 1 and time.monotonic() < deadline:
                    continue
                raise errors.from_grpc(code, e.details() or code.name) from e
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
