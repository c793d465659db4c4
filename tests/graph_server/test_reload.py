"""Model config: TF-Serving's good_model_config.txt, HandleReloadConfigRequest and file polling.

One server, started from good_model_config.txt with its placeholders filled in
(as TF-Serving's test does), is reconfigured step by step.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import text_format

from gateway.procs import wait_for
from gateway.wire.protos import model_management_pb2
from tests.conftest import GraphFactory
from tests.graph_server.conftest import RPC_TIMEOUT, Graph, config_text, predict_x, start_server, y_of

pytestmark = pytest.mark.integration

AVAILABLE, END = 30, 50


@pytest.fixture(scope="module")
def setup(
    start_graph: GraphFactory, anchors: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Graph, Path, Path]]:
    tmp = tmp_path_factory.mktemp("reload")
    config = tmp / "models.config"
    config.write_text(
        (anchors / "good_model_config.txt")
        .read_text()
        .replace("${TEST_HALF_PLUS_TWO_DIR}", str(anchors / "saved_model_half_plus_two_cpu"))
        .replace("${TEST_HALF_PLUS_THREE_DIR}", str(anchors / "saved_model_half_plus_three"))
    )
    two = tmp / "two"
    shutil.copytree(anchors / "saved_model_half_plus_two_2_versions", two)
    g = start_server(
        start_graph,
        f"--model_config_file={config}",
        "--model_config_file_poll_wait_seconds=1",
        "--file_system_poll_wait_seconds=1",
        "--grpc_channel_arguments=grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb",
    )
    yield g, config, two
    g.close()


def reload(graph: Graph, models: list[dict[str, Any]]) -> Any:
    req = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(config_text(models), req.config)
    return graph.models.HandleReloadConfigRequest(req, timeout=RPC_TIMEOUT)


def not_found(graph: Graph, model: str) -> bool:
    try:
        predict_x(graph, model)
    except grpc.RpcError as e:
        return bool(e.code() == grpc.StatusCode.NOT_FOUND)
    return False


def test_good_model_config_serves_both_models(setup: tuple[Graph, Path, Path]) -> None:
    graph, _config, _two = setup
    for model, expected in (("half_plus_two", 3.0), ("half_plus_three", 4.0)):
        for output_filter in (("y",), ()):
            resp = predict_x(graph, model, signature="serving_default", output_filter=output_filter)
            assert y_of(resp) == expected
            assert (resp.model_spec.name, resp.model_spec.version.value) == (model, 123)


def test_no_metrics_page_without_a_monitoring_config(setup: tuple[Graph, Path, Path]) -> None:
    graph, _config, _two = setup
    r = graph.get("/monitoring/prometheus/metrics")
    assert r.status_code == 404
    assert list(r.json()) == ["error"]


def test_reload_request_replaces_the_model_list(setup: tuple[Graph, Path, Path], anchors: Path) -> None:
    graph, _config, two = setup
    hp2 = anchors / "saved_model_half_plus_two_cpu"
    resp = reload(
        graph,
        [
            {"name": "half_plus_two", "base_path": hp2},
            {"name": "two", "base_path": two, "policy": "model_version_policy { all {} }"},
        ],
    )
    assert resp.status.error_code == 0
    assert not_found(graph, "half_plus_three"), "a model left out is unloaded"
    assert graph.status("half_plus_three") == {123: (END, 0, "")}
    assert predict_x(graph, "two").model_spec.version.value == 124
    assert predict_x(graph, "two", version=123).model_spec.version.value == 123
    assert y_of(predict_x(graph, "half_plus_two")) == 3.0


def test_labels_may_only_point_at_available_versions(setup: tuple[Graph, Path, Path], anchors: Path) -> None:
    graph, _config, two = setup
    hp2 = anchors / "saved_model_half_plus_two_cpu"
    models = [
        {"name": "half_plus_two", "base_path": hp2},
        {
            "name": "two",
            "base_path": two,
            "policy": "model_version_policy { all {} }",
            "labels": {"stable": 123},
        },
    ]
    reload(graph, models)
    assert predict_x(graph, "two", label="stable").model_spec.version.value == 123
    models[1]["labels"] = {"stable": 123, "next": 999}
    with pytest.raises(grpc.RpcError) as info:
        reload(graph, models)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not currently available for inference" in info.value.details()
    assert predict_x(graph, "two", label="stable").model_spec.version.value == 123


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        (
            'model_config_list { config { name: "a" base_path: "/x" model_platform: "tensorflow" } '
            'config { name: "a" base_path: "/y" model_platform: "tensorflow" } }',
            grpc.StatusCode.INVALID_ARGUMENT,
            "Illegal to list model a multiple times in config list",
        ),
        (
            'model_config_list { config { name: "a" base_path: "/x" } }',
            grpc.StatusCode.INVALID_ARGUMENT,
            "Illegal setting neither ModelServerConfig::model_type",
        ),
        ("", grpc.StatusCode.INVALID_ARGUMENT, "Only ModelConfigList is currently supported"),
    ],
)
def test_reload_request_rejects_bad_configs(
    setup: tuple[Graph, Path, Path], text: str, code: grpc.StatusCode, message: str
) -> None:
    graph, _config, _two = setup
    req = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(text, req.config)
    with pytest.raises(grpc.RpcError) as info:
        graph.models.HandleReloadConfigRequest(req, timeout=RPC_TIMEOUT)
    assert info.value.code() == code
    assert message in info.value.details()
    assert y_of(predict_x(graph, "half_plus_two")) == 3.0, "a rejected config changes nothing"


def test_reload_with_an_unloadable_model_reports_it(setup: tuple[Graph, Path, Path], anchors: Path) -> None:
    graph, _config, two = setup
    models = [
        {"name": "half_plus_two", "base_path": anchors / "saved_model_half_plus_two_cpu"},
        {
            "name": "two",
            "base_path": two,
            "policy": "model_version_policy { all {} }",
            "labels": {"stable": 123},
        },
        {"name": "bad", "base_path": anchors / "bad_half_plus_two"},
    ]
    with pytest.raises(grpc.RpcError) as info:
        reload(graph, models)
    assert info.value.code() == grpc.StatusCode.UNKNOWN
    assert "1 model(s) did not become available" in info.value.details()
    state, code, message = graph.status("bad")[123]
    assert state == END and code != 0 and "SavedModel" in message
    reload(graph, models[:2])


def test_removed_version_directory_is_unloaded(setup: tuple[Graph, Path, Path]) -> None:
    graph, _config, two = setup
    shutil.rmtree(two / "00000124")
    wait_for(lambda: graph.status("two")[124][0] == END, 60, "v124 unloaded", graph.proc)
    assert predict_x(graph, "two").model_spec.version.value == 123


def test_config_file_changes_are_polled(setup: tuple[Graph, Path, Path], anchors: Path) -> None:
    graph, config, _two = setup
    config.write_text(
        config_text([{"name": "half_plus_three", "base_path": anchors / "saved_model_half_plus_three"}])
    )
    wait_for(lambda: not not_found(graph, "half_plus_three"), 60, "half_plus_three from the file", graph.proc)
    assert y_of(predict_x(graph, "half_plus_three")) == 4.0
    wait_for(lambda: not_found(graph, "half_plus_two"), 60, "half_plus_two unloaded", graph.proc)
