"""Version lifecycle on a served base path while a client keeps calling: no request may fail.

The demo risk model is used because its versions carry real warmup files.
Timing is never asserted in seconds: "within 2 poll periods" is counted in the
server's own file-system poll passes (a Prometheus counter).
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from gateway.procs import wait_for
from gateway.wire.protos import predict_pb2, prediction_log_pb2
from gateway.wire.tensors import to_proto
from tests.conftest import GraphFactory
from tests.graph_server.conftest import RPC_TIMEOUT, Graph, start_server

pytestmark = pytest.mark.integration

AVAILABLE, END = 30, 50
INVALID_ARGUMENT = 3


class LoadClient:
    """Sends Predicts back to back from its own thread; remembers versions seen and failures."""

    def __init__(self, graph: Graph) -> None:
        self.channel = grpc.insecure_channel(f"127.0.0.1:{graph.grpc_port}")
        self.stub = graph.predict.__class__(self.channel)
        self.versions: list[int] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "risk"
        req.model_spec.signature_name = "score"
        req.inputs["features"].CopyFrom(to_proto(np.zeros((2, 18), np.float32)))
        req.output_filter.append("probability")
        self.request = req

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                resp = self.stub.Predict(self.request, timeout=RPC_TIMEOUT)
                self.versions.append(resp.model_spec.version.value)
            except grpc.RpcError as e:
                self.errors.append(f"{e.code()}: {e.details()}")

    def __enter__(self) -> LoadClient:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=RPC_TIMEOUT)
        self.channel.close()

    def seen(self, version: int, after: int = 0) -> bool:
        return version in self.versions[after:]


@pytest.fixture(scope="module")
def served(
    start_graph: GraphFactory, built_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Graph, Path, Path]]:
    work = tmp_path_factory.mktemp("lifecycle")
    monitoring = work / "monitoring_config.txt"
    monitoring.write_text('prometheus_config: { enable: true, path: "/monitoring/prometheus/metrics" }\n')
    base = work / "risk"
    source = built_models / "risk" / "1"
    shutil.copytree(source, base / "1")
    g = start_server(
        start_graph,
        "--model_name=risk",
        f"--model_base_path={base}",
        "--file_system_poll_wait_seconds=1",
        f"--monitoring_config_file={monitoring}",
    )
    yield g, base, source
    g.close()


def polls(graph: Graph) -> int:
    m = re.search(r"^graph_server_file_system_polls_total (\S+)$", graph.metrics(), re.MULTILINE)
    assert m is not None
    return int(float(m.group(1)))


def test_new_version_replaces_old_without_a_failed_request(served: tuple[Graph, Path, Path]) -> None:
    graph, base, source = served
    with LoadClient(graph) as client:
        wait_for(lambda: len(client.versions) >= 20, 60, "first answers", graph.proc)
        # Half-copied: the graph and warmup file are there, the variables are not yet.
        (base / "2").mkdir()
        shutil.copy(source / "saved_model.pb", base / "2")
        shutil.copytree(source / "assets.extra", base / "2" / "assets.extra")
        wait_for(lambda: graph.status("risk").get(2, (0,))[0] == END, 60, "v2 load failure", graph.proc)
        _state, code, message = graph.status("risk")[2]
        assert code != 0 and message, "a failed load is reported in the status"
        assert graph.status("risk")[1][0] == AVAILABLE
        assert set(client.versions) == {1}

        shutil.copytree(source, base / "2", dirs_exist_ok=True)  # the copy completes
        before, mark = polls(graph), len(client.versions)
        wait_for(lambda: client.seen(2, mark), 120, "v2 serving", graph.proc)
        assert polls(graph) - before <= 2, "the new version must serve within 2 poll periods"
        wait_for(lambda: graph.status("risk")[1][0] == END, 60, "v1 unloaded", graph.proc)
        mark = len(client.versions)
        wait_for(lambda: len(client.versions) > mark + 20, 60, "more answers", graph.proc)
    assert client.errors == []
    assert set(client.versions[mark:]) == {2}
    assert "model risk: version 2 warmed up with 3 record(s)" in graph.proc.output()


def test_version_failing_warmup_never_replaces_a_good_one(served: tuple[Graph, Path, Path]) -> None:
    graph, base, source = served
    staging = base.parent / "staging-3"
    shutil.copytree(source, staging)
    bad = prediction_log_pb2.PredictionLog()
    req = bad.predict_log.request
    req.model_spec.name, req.model_spec.signature_name = "risk", "score"
    req.inputs["not_an_input"].CopyFrom(to_proto(np.zeros((1, 18), np.float32)))
    _write_tfrecord(staging / "assets.extra" / "tf_serving_warmup_requests", [bad.SerializeToString()])
    with LoadClient(graph) as client:
        staging.rename(base / "3")  # published atomically, but broken
        wait_for(lambda: graph.status("risk").get(3, (0,))[0] == END, 60, "v3 warmup failure", graph.proc)
        _state, code, message = graph.status("risk")[3]
        assert code == INVALID_ARGUMENT and "not_an_input" in message
        mark = len(client.versions)
        wait_for(lambda: len(client.versions) > mark + 20, 60, "answers after v3 failed", graph.proc)
    assert client.errors == []
    assert set(client.versions[mark:]) == {2}


def test_removed_versions_are_unloaded(served: tuple[Graph, Path, Path]) -> None:
    """Removing the served version brings the remaining one back before the removed one goes."""
    graph, base, _source = served
    with LoadClient(graph) as client:
        shutil.rmtree(base / "3")
        shutil.rmtree(base / "2")
        wait_for(lambda: graph.status("risk")[2][0] == END, 120, "v2 unloaded", graph.proc)
        assert graph.status("risk")[1][0] == AVAILABLE
        mark = len(client.versions)
        wait_for(lambda: len(client.versions) > mark + 20, 60, "answers from v1", graph.proc)
    assert client.errors == []
    assert set(client.versions[mark:]) == {1}


def _write_tfrecord(path: Path, records: list[bytes]) -> None:
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as writer:
        for r in records:
            writer.write(r)
