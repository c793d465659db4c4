"""Server-side batching: concurrent Predicts merged into one session run and split back.

Determinism without timing: batches are made to close because they are full
(a very long batch timeout), and the test waits on the server's queue gauge
rather than on the clock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from gateway.graph_server.batching import BatchingOptions, BatchingRunner
from gateway.graph_server.errors import ServingError
from gateway.procs import wait_for
from gateway.wire.protos import predict_pb2
from gateway.wire.tensors import to_numpy, to_proto
from tests.conftest import GraphFactory
from tests.graph_server.conftest import RPC_TIMEOUT, Graph, half_plus_two_rows, start_server

HP2 = "saved_model_half_plus_two_cpu"
LONG_MICROS = 120_000_000  # batches close because they are full, never by timeout


# -- the real server ---------------------------------------------------------
@pytest.fixture(scope="module")
def batched(
    start_graph: GraphFactory, anchors: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Graph]:
    params = tmp_path_factory.mktemp("batching") / "batching.txt"
    params.write_text(
        "max_batch_size { value: 4 }\n"
        f"batch_timeout_micros {{ value: {LONG_MICROS} }}\n"
        "max_enqueued_batches { value: 1 }\n"
        "num_batch_threads { value: 1 }\n"
    )
    g = start_server(
        start_graph,
        "--model_name=default",
        f"--model_base_path={anchors / HP2}",
        "--enable_batching",
        f"--batching_parameters_file={params}",
        f"--monitoring_config_file={anchors / 'monitoring_config.txt'}",
    )
    yield g
    g.close()


def _predict(graph: Graph, rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "default"
    req.inputs["x"].CopyFrom(to_proto(rows))
    return to_numpy(graph.predict.Predict(req, timeout=RPC_TIMEOUT).outputs["y"])


def _metric(graph: Graph, name: str) -> float:
    pattern = rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$"
    return sum(float(m.group(1)) for m in re.finditer(pattern, graph.metrics(), re.MULTILINE))


def _queued(graph: Graph) -> float:
    return _metric(graph, "graph_server_batch_queue_rows")


def _batches(graph: Graph) -> tuple[float, float]:
    name = ":tensorflow:serving:batching_session:processed_batch_size"
    return _metric(graph, f"{name}_count"), _metric(graph, f"{name}_sum")


def _send_when_queued(
    graph: Graph, first: list[np.ndarray[Any, Any]], last: np.ndarray[Any, Any]
) -> list[Any]:
    """Send ``first`` concurrently, wait until all are queued, then send ``last``."""
    with ThreadPoolExecutor(len(first) + 1) as pool:
        futures = [pool.submit(_predict, graph, rows) for rows in first]
        queued = sum(len(r) for r in first)
        wait_for(lambda: _queued(graph) == queued, 60, "requests queued", graph.proc)
        futures.append(pool.submit(_predict, graph, last))
        return [f.result(timeout=RPC_TIMEOUT) for f in futures]


@pytest.mark.integration
def test_concurrent_predicts_run_as_one_batch(batched: Graph) -> None:
    count0, sum0 = _batches(batched)
    rows = [np.array([[float(i)]], np.float32) for i in range(3)]
    last = np.array([[10.0]], np.float32)
    results = _send_when_queued(batched, rows, last)
    for sent, got in zip([*rows, last], results, strict=True):
        np.testing.assert_array_equal(got, half_plus_two_rows(sent))
    assert _batches(batched) == (count0 + 1, sum0 + 4)


@pytest.mark.integration
def test_multi_row_requests_are_split_back(batched: Graph) -> None:
    count0, sum0 = _batches(batched)
    a = np.array([[1.0], [2.0]], np.float32)
    b = np.array([[7.0], [8.0]], np.float32)
    got_a, got_b = _send_when_queued(batched, [a], b)
    np.testing.assert_array_equal(got_a, half_plus_two_rows(a))
    np.testing.assert_array_equal(got_b, half_plus_two_rows(b))
    assert _batches(batched) == (count0 + 1, sum0 + 4)


@pytest.mark.integration
def test_full_queue_answers_unavailable_and_oversized_requests_are_refused(batched: Graph) -> None:
    with ThreadPoolExecutor(2) as pool:
        waiting = pool.submit(_predict, batched, np.array([[1.0], [2.0], [3.0]], np.float32))
        wait_for(lambda: _queued(batched) == 3, 60, "3 rows queued", batched.proc)
        with pytest.raises(grpc.RpcError) as full:
            _predict(batched, np.array([[4.0], [5.0]], np.float32))  # needs a 2nd batch; 1 allowed
        assert full.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "The batch scheduling queue to which this task was submitted is full" in full.value.details()
        with pytest.raises(grpc.RpcError) as big:
            _predict(batched, np.zeros((5, 1), np.float32))
        assert big.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "Task size 5 is larger than maximum input batch size 4" in big.value.details()
        np.testing.assert_array_equal(_predict(batched, np.array([[9.0]], np.float32)), [[6.5]])
        np.testing.assert_array_equal(waiting.result(timeout=RPC_TIMEOUT), [[2.5], [3.0], [3.5]])


# -- the runner in this process, on a real servable --------------------------
in_process = pytest.mark.slow  # loads TensorFlow into the test process


@pytest.fixture(scope="module")
def servable(anchors: Path) -> Iterator[Any]:
    from gateway.graph_server.servable import Servable

    s = Servable("default", 123, anchors / HP2 / "00000123")
    yield s
    s.close()


@in_process
def test_padding_to_allowed_batch_sizes(servable: Any) -> None:
    seen: list[tuple[int, int]] = []
    runner = BatchingRunner(
        BatchingOptions(max_batch_size=8, allowed_batch_sizes=(2, 4, 8), num_batch_threads=1),
        on_batch=lambda _s, _sig, size, padded: seen.append((size, padded)),
    )
    try:
        x = np.array([[1.0], [2.0], [3.0]], np.float32)
        key, out = runner.predict(servable, "", {"x": x}, ())
        assert key == "serving_default"
        np.testing.assert_array_equal(out["y"], half_plus_two_rows(x))  # padding row cut off
        assert seen == [(3, 4)]
    finally:
        runner.close()


@in_process
def test_many_threads_each_get_their_own_rows(servable: Any) -> None:
    runner = BatchingRunner(
        BatchingOptions(max_batch_size=16, batch_timeout_micros=2000, num_batch_threads=2)
    )
    try:

        def call(i: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
            x = np.arange(i % 3 + 1, dtype=np.float32).reshape(-1, 1) + 100 * i
            return x, runner.predict(servable, "serving_default", {"x": x}, ("y",))[1]["y"]

        with ThreadPoolExecutor(12) as pool:
            for x, y in pool.map(call, range(60)):
                np.testing.assert_array_equal(y, half_plus_two_rows(x))
    finally:
        runner.close()


@in_process
def test_bad_request_is_refused_before_it_can_spoil_a_batch(servable: Any) -> None:
    runner = BatchingRunner(BatchingOptions(max_batch_size=4, num_batch_threads=1))
    try:
        with pytest.raises(ServingError, match="Expects arg\\[0\\] to be float but double is provided"):
            runner.predict(servable, "", {"x": np.zeros((1, 1))}, ())
        with pytest.raises(ServingError, match="not found"):
            runner.predict(servable, "nope", {"x": np.zeros((1, 1), np.float32)}, ())
    finally:
        runner.close()


@in_process
def test_close_fails_queued_requests_as_unavailable(servable: Any) -> None:
    runner = BatchingRunner(BatchingOptions(max_batch_size=4, batch_timeout_micros=LONG_MICROS))
    errors: list[ServingError] = []

    def call() -> None:
        try:
            runner.predict(servable, "", {"x": np.zeros((1, 1), np.float32)}, ())
        except ServingError as e:
            errors.append(e)

    t = threading.Thread(target=call)
    t.start()
    wait_for(lambda: runner.queued_rows() == 1, 30, "queued")
    runner.close()
    t.join(timeout=30)
    assert [e.code for e in errors] == [grpc.StatusCode.UNAVAILABLE]


@in_process
def test_a_request_waits_no_longer_than_its_timeout(servable: Any) -> None:
    runner = BatchingRunner(BatchingOptions(max_batch_size=4, batch_timeout_micros=LONG_MICROS))
    try:
        with pytest.raises(ServingError) as info:
            runner.predict(servable, "", {"x": np.zeros((1, 1), np.float32)}, (), timeout_s=0.2)
        assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        runner.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_batch_size { value: 4 } allowed_batch_sizes: 2", "must match max_batch_size"),
        ("max_batch_size { value: 4 } allowed_batch_sizes: [4, 2, 4]", "monotonically increasing"),
        ("num_batch_threads { value: 0 }", "num_batch_threads must be >= 1"),
    ],
)
def test_inconsistent_batching_parameters_are_rejected(text: str, message: str) -> None:
    from gateway.graph_server.protodefs import batching_parameters

    with pytest.raises(ValueError, match=message):
        BatchingOptions.from_proto(batching_parameters(text))


def test_batching_parameters_defaults_and_anchor_file(anchors: Path) -> None:
    from gateway.graph_server.protodefs import read_text_proto

    opts = BatchingOptions.from_proto(read_text_proto("BatchingParameters", anchors / "batching_config.txt"))
    assert (opts.max_batch_size, opts.batch_timeout_micros) == (128, 0)
    assert (opts.max_enqueued_batches, opts.num_batch_threads) == (1000000, 8)
