"""The logic service under gunicorn, live: a new worker takes connections only once a model
version is available to it (``GATEWAY_START_WAIT_SECONDS``), so a request sent while it starts
waits for the full model instead of getting a fallback's answer or a 503; the metrics directory
the master makes goes when it stops."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.deploy.serving import GRAPH_ENV, TF_FLAGS
from gateway.procs import Proc, free_port, graph_command, graph_serving, wait_for
from tests.support import REPO, start_logic

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_worker_takes_connections_only_once_a_version_is_available(
    built_models: Path, risk_features: Callable[[int], str], tmp_path: Path
) -> None:
    grpc_port = free_port()  # nothing listens there yet
    logic, url = start_logic("risk", built_models, risk_features(7), tmp_path / "logic.log", grpc_port,
                             ready_s=0, GATEWAY_WORKERS="1", GATEWAY_START_WAIT_SECONDS="60")  # fmt: skip
    graph = None
    try:
        wait_for(lambda: "Booting worker" in logic.log.read_text(), 60, "gunicorn worker", logic)
        time.sleep(1.0)  # the worker has built its app and waits on the graph
        answer: dict[str, Any] = {}

        def ask() -> None:
            body = {"data": [json.loads((REPO / "examples/risk.json").read_text())["data"][0]]}
            r = requests.post(f"{url}/get_score", json=body, timeout=90)
            answer.update(status=r.status_code, body=r.json(), at=time.monotonic())

        asking = threading.Thread(target=ask)
        asking.start()
        asking.join(3.0)
        assert not answer, f"answered while no version was available: {answer}"
        graph = Proc(
            graph_command(
                grpc_port, "--model_name=risk", f"--model_base_path={built_models / 'risk'}", *TF_FLAGS
            ),
            tmp_path / "graph.log",
            env={"TF_CPP_MIN_LOG_LEVEL": "2", **GRAPH_ENV},
        )
        wait_for(graph_serving(grpc_port, "risk"), 90, "graph-server", graph)
        asking.join(60)
        assert answer.get("status") == 200, answer
        assert "degraded" not in answer["body"], answer["body"]
        assert "taking requests anyway" not in logic.log.read_text()
    finally:
        logic.stop()
        if graph is not None:
            graph.stop()


def test_the_metrics_directory_the_master_made_goes_when_it_stops(
    built_models: Path,
    risk_graph: int,
    risk_features: Callable[[int], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    logic, url = start_logic("risk", built_models, risk_features(7), tmp_path / "logic.log", risk_graph)
    try:
        body = {"data": [json.loads((REPO / "examples/risk.json").read_text())["data"][0]]}
        assert requests.post(f"{url}/get_score", json=body, timeout=30).status_code == 200
        found = re.search(r"metrics directory (\S+)", logic.log.read_text())
        assert found is not None, logic.log.read_text()
        made = Path(found.group(1))
        assert made.is_dir() and made.name.startswith("gateway-metrics-")
        wait_for(lambda: any(made.glob("*.db")), 10, "metrics files")
    finally:
        logic.stop()
    assert not made.exists()
