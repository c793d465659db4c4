"""End to end through real processes: redis-server, graph-server and gunicorn.

Scores must equal the offline result: the same transformer and SavedModel run
in this test process on the same inputs (features taken from the demo table the
stack loaded, not from Redis).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from gateway.procs import Proc, children, free_port, logic_command, wait_for
from tests.reference import risk_scores
from tests.support import REPO

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def logic_url(
    built_models: Path,
    risk_graph: int,
    risk_features: Callable[[int], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    e2e_redis = risk_features(1)
    port = free_port()
    env = {
        "GATEWAY_MODEL": "risk",
        "GATEWAY_MODELS_ROOT": str(built_models),
        "GATEWAY_REDIS_URL": e2e_redis,
        "GATEWAY_GRAPH_TARGETS": json.dumps([f"127.0.0.1:{risk_graph}"]),
        "GATEWAY_BIND": f"127.0.0.1:{port}",
        "GATEWAY_WORKERS": "2",
        "GATEWAY_METRICS_FLUSH_MS": "200",
    }
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    proc = Proc(
        logic_command(),
        log,
        env=env,
        cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(f"{url}/health", timeout=1).status_code == 200, 60, "gunicorn", proc)
    yield url
    proc.stop()


def offline_scores(models_root: Path, records: list[dict[str, Any]]) -> np.ndarray[Any, Any]:
    """The reference: pandas + the pickled transformer + the SavedModel of version 1, in this process."""
    base = models_root / "risk"
    return risk_scores(base / "model.yaml", base / "1", base / "demo" / "customer.parquet", records)


def post(url: str, body: Any, **kw: Any) -> requests.Response:
    return requests.post(f"{url}/get_score", json=body, timeout=10, **kw)


def test_example_request_scores_equal_offline(logic_url: str, built_models: Path) -> None:
    body = json.loads((REPO / "examples" / "risk.json").read_text())
    r = post(logic_url, body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["msg"] == "Successful!" and out["code"] == 200
    assert out["model"] == {"name": "risk", "version": 1}
    online = np.array([d["score"] for d in out["data"]])
    expected = offline_scores(built_models, body["data"])
    np.testing.assert_allclose(online, expected, atol=1e-5, rtol=0)


def test_many_records_keep_input_order(logic_url: str, built_models: Path) -> None:
    rng = np.random.default_rng(3)
    purposes = ["car", "home", "education", "business", "personal", "boat"]  # "boat": unseen category
    records = [
        {
            "customer_id": f"C{int(rng.integers(0, 6000)):06d}",  # some ids beyond the table: defaults
            "loan_amount": float(rng.uniform(500, 80000)),
            "term_months": int(rng.choice([12, 24, 36, 48, 60])),
            "purpose": str(rng.choice(purposes)),
            "employment_years": float(rng.uniform(0, 30)),
        }
        for _ in range(150)
    ]
    r = post(logic_url, {"data": records})
    assert r.status_code == 200, r.text
    online = np.array([d["score"] for d in r.json()["data"]])
    np.testing.assert_allclose(online, offline_scores(built_models, records), atol=1e-5, rtol=0)
    assert len(set(np.round(online, 6))) > 100  # genuinely different scores, not a constant


def test_malformed_json_gets_400_envelope(logic_url: str) -> None:
    r = requests.post(
        f"{logic_url}/get_score", data=b'{"data": [', headers={"Content-Type": "application/json"}, timeout=5
    )
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == 400 and body["error"] == "malformed_json"
    assert "Traceback" not in r.text


def test_health(logic_url: str) -> None:
    r = requests.get(f"{logic_url}/health", timeout=5)
    assert r.status_code == 200 and r.json() == {"health": "status", "code": 200}


def _gunicorn_master(port: int) -> int:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gateway.logic.web.app:create_app()" in args and children(int(cmdline.parent.name)):
            environ = (cmdline.parent / "environ").read_bytes()
            if f"GATEWAY_BIND=127.0.0.1:{port}".encode() in environ:
                return int(cmdline.parent.name)
    raise LookupError("gunicorn master not found")


def test_logic_workers_never_load_tensorflow(logic_url: str) -> None:
    post(logic_url, json.loads((REPO / "examples" / "risk.json").read_text())).raise_for_status()
    port = int(logic_url.rsplit(":", 1)[1])
    workers = children(_gunicorn_master(port))
    assert workers, "no gunicorn workers found"
    for pid in workers:
        maps = Path(f"/proc/{pid}/maps").read_text()
        tf_libs = {line.split()[-1] for line in maps.splitlines() if "tensorflow" in line and ".so" in line}
        assert not tf_libs, f"worker {pid} mapped TensorFlow libraries: {sorted(tf_libs)[:3]}"


def test_tensorflow_detection_works_on_the_graph_server(risk_graph: int) -> None:
    """Control for the test above: the same probe does see TensorFlow where it is loaded."""
    flag = f"--port={risk_graph}".encode()
    pids = [
        int(c.parent.name)
        for c in Path("/proc").glob("[0-9]*/cmdline")
        if flag in c.read_bytes().split(b"\0")
    ]
    assert pids
    maps = Path(f"/proc/{pids[0]}/maps").read_text()
    assert any("tensorflow" in line and ".so" in line for line in maps.splitlines())


def _count(metrics_text: str, status: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if (
            line.startswith("gateway_requests_total{")
            and f'status="{status}"' in line
            and "get_score" in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_add_up_across_gunicorn_workers(logic_url: str) -> None:
    body = json.loads((REPO / "examples" / "risk.json").read_text())

    def total() -> float:
        return _count(requests.get(f"{logic_url}/metrics", timeout=5).text, "200")

    # Workers apply metric updates every GATEWAY_METRICS_FLUSH_MS (200 ms here): let earlier
    # tests' requests land first, then count from a settled total.
    seen = [total()]

    def settled() -> bool:
        time.sleep(0.5)
        seen.append(total())
        return seen[-1] == seen[-2]

    wait_for(settled, 15, "metrics to settle")
    before = seen[-1]
    for _ in range(20):  # a new connection each time: requests spread over both workers
        assert requests.post(f"{logic_url}/get_score", json=body, timeout=10).status_code == 200

    # All 20 show within a flush interval, and never more (/metrics counts under its own endpoint).
    wait_for(lambda: total() - before >= 20, 10, "metrics of both workers")
    assert total() - before == 20


def test_access_log_is_json_with_the_request_id(
    logic_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    body = json.loads((REPO / "examples" / "risk.json").read_text())
    r = requests.post(
        f"{logic_url}/get_score", json=body, headers={"X-Request-ID": "trace-e2e-42"}, timeout=10
    )
    assert r.headers["X-Request-ID"] == "trace-e2e-42"
    log = next(tmp_path_factory.getbasetemp().glob("gunicorn*/gunicorn.log"))

    def lines() -> list[dict[str, Any]]:
        text = log.read_text().splitlines()
        return [json.loads(x) for x in text if x.startswith("{") and "trace-e2e-42" in x]

    wait_for(lambda: bool(lines()), 10, "the access-log line")
    line = lines()[0]
    assert line["status"] == 200 and line["items"] == 3 and "graph" in line["stages_ms"]


def test_python_client_scores_and_reports_errors(logic_url: str) -> None:
    from gateway.client import ScoringClient, ScoringError

    body = json.loads((REPO / "examples" / "risk.json").read_text())
    with ScoringClient(logic_url) as client:
        assert client.health()
        result = client.score(body["data"], request_id="client-1")
        assert len(result.scores) == 3 and result.model["version"] == 1 and result.request_id == "client-1"
        assert set(result.timings_ms) == {"validate", "features", "transform", "graph", "post"}
        with pytest.raises(ScoringError) as exc:
            client.score([{"customer_id": "C1"}])
        assert exc.value.status == 400 and exc.value.error == "invalid_field"
        assert exc.value.details[0]["field"] == "data[0].loan_amount"
    with ScoringClient(f"http://127.0.0.1:{free_port()}", retries=1, backoff=0) as dead:
        assert not dead.health()
        with pytest.raises(ScoringError) as exc:
            dead.score(body["data"])
        assert exc.value.error == "unreachable"
