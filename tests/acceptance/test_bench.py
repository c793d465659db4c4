"""``gateway bench`` against real services, and the naive baseline ``make bench`` compares with.

One redis-server (demo features), one graph-server and two gunicorn services on free ports:
the project's logic service and ``bench/naive_app.py``. Runs are a second or two long: the
tests check the report's structure and that its counts add up, never speed; the open-loop
test checks the arrival rate the generator achieved, which a service with room to spare
does not limit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from gateway.procs import Proc, free_port, logic_command, python, wait_for
from tests.support import REPO

pytestmark = pytest.mark.integration

NAIVE_APP = "bench.naive_app:create_app()"


def _service(app: str, env: dict[str, str], log: Path, ready: str, procs: list[Proc]) -> str:
    port = free_port()
    proc = Proc(
        [*logic_command()[:-1], app],
        log,
        env={**env, "GATEWAY_BIND": f"127.0.0.1:{port}", "GATEWAY_WORKERS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"},
        cwd=REPO,
    )
    procs.append(proc)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(f"{url}{ready}", timeout=2).status_code == 200, 90, app, proc)
    return url


@pytest.fixture(scope="module")
def services(
    built_models: Path,
    risk_graph: int,
    risk_features: Callable[[int], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    """Base URLs: ``gateway`` (the project's logic service) and ``naive``, same Redis and graph."""
    logs = tmp_path_factory.mktemp("bench-services")
    env = {
        "GATEWAY_MODEL": "risk",
        "GATEWAY_MODELS_ROOT": str(built_models),
        "GATEWAY_REDIS_URL": risk_features(7),
        "GATEWAY_GRAPH_TARGETS": json.dumps([f"127.0.0.1:{risk_graph}"]),
    }
    procs: list[Proc] = []
    try:
        yield {
            "gateway": _service(
                "gateway.logic.web.app:create_app()", env, logs / "gateway.log", "/ready", procs
            ),
            "naive": _service(NAIVE_APP, env, logs / "naive.log", "/health", procs),
        }
    finally:
        for p in procs:
            p.stop()


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python(), "-m", "gateway.cli", "bench", *args, "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def check_setting(s: dict[str, Any], edges: int) -> None:
    """The counts of one setting add up and its latencies are ordered."""
    assert s["requests"] > 0
    assert sum(s["statuses"].values()) == s["requests"]
    assert s["errors"] == s["requests"] - s["statuses"].get("200", 0)
    assert len(s["histogram"]) == edges - 1
    assert sum(s["histogram"]) == s["statuses"].get("200", 0)
    lat = s["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert s["throughput_rps"] == pytest.approx(s["statuses"]["200"] / s["elapsed_s"], rel=0.01)
    assert 0.0 <= s["degraded_share"] <= 1.0


def check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_closed_loop_report_counts_add_up(
    services: dict[str, str], built_models: Path, tmp_path: Path
) -> None:
    out = tmp_path / "closed.json"
    run = bench(
        services["gateway"],
        *("--model", "risk", "--root", str(built_models), "--clients", "1,3"),
        *("--duration", "1", "--warmup", "0.2", "--records", "2", "--out", str(out)),
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    assert report["mode"] == "closed" and report["duration_s"] == 1.0
    assert report["mix"]["records_per_request"] == 2 and report["mix"]["bodies"] > 10
    assert [t["name"] for t in report["targets"]] == ["risk"]
    settings = report["targets"][0]["settings"]
    assert [(s["clients"], s["rate"]) for s in settings] == [(1, None), (3, None)]
    for s in settings:
        check_setting(s, len(report["histogram_edges_ms"]))
        assert s["errors"] == 0, s["statuses"]
        assert s["versions"] == {"1": s["requests"]}
    assert "comparison" not in report
    check_png(out.with_suffix(".png"))
    assert "p99 ms" in run.stdout and str(out) in run.stdout


def test_baseline_runs_side_by_side_on_a_mix_file(
    services: dict[str, str], built_models: Path, tmp_path: Path
) -> None:
    example = json.loads((REPO / "examples" / "risk.json").read_text())
    mix = tmp_path / "mix.jsonl"
    mix.write_text("".join(json.dumps({"data": [r]}) + "\n" for r in example["data"]) + "\n")
    out = tmp_path / "side.json"
    run = bench(
        services["gateway"],
        *(
            "--mix",
            str(mix),
            "--baseline",
            services["naive"],
            "--name",
            "gateway",
            "--baseline-name",
            "naive",
        ),
        *("--clients", "2", "--duration", "1", "--warmup", "0.2", "--out", str(out)),
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    assert report["mix"]["bodies"] == 3 and report["mix"]["source"] == f"file {mix}"
    first, second = report["targets"]
    assert (first["name"], first["url"]) == ("gateway", services["gateway"])
    assert (second["name"], second["url"]) == ("naive", services["naive"])
    for t in report["targets"]:
        (s,) = t["settings"]
        check_setting(s, len(report["histogram_edges_ms"]))
        assert s["errors"] == 0, s["statuses"]
    (c,) = report["comparison"]
    a, b = first["settings"][0], second["settings"][0]
    assert c["throughput_ratio"] == pytest.approx(a["throughput_rps"] / b["throughput_rps"], rel=1e-2)
    assert c["p99_ratio"] == pytest.approx(a["latency_ms"]["p99"] / b["latency_ms"]["p99"], rel=1e-2)
    assert "gateway / naive, 2 clients" in run.stdout
    check_png(out.with_suffix(".png"))


def test_open_loop_keeps_its_arrival_rate(
    services: dict[str, str], built_models: Path, tmp_path: Path
) -> None:
    out = tmp_path / "open.json"
    rate, duration = 150.0, 2.0
    run = bench(
        services["gateway"],
        *("--model", "risk", "--root", str(built_models), "--rate", str(rate), "--clients", "4"),
        *("--duration", str(duration), "--warmup", "0.3", "--out", str(out)),
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    assert report["mode"] == "open"
    (s,) = report["targets"][0]["settings"]
    check_setting(s, len(report["histogram_edges_ms"]))
    assert s["rate"] == rate and s["clients"] == 4
    assert s["requests"] == pytest.approx(rate * duration, rel=0.01)  # every request due in the window
    assert s["achieved_rate_rps"] == pytest.approx(rate, rel=0.05)
    assert "arrivals" in run.stdout


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nosuch", "no model 'nosuch'"),
        ("http://127.0.0.1:{port}", "nothing answers at http://127.0.0.1:"),
        ("ftp://127.0.0.1/", "not an http://HOST[:PORT] URL"),
    ],
)
def test_a_wrong_target_is_a_one_line_input_error(built_models: Path, target: str, message: str) -> None:
    run = bench(target.format(port=free_port()), "--model", "risk", "--root", str(built_models))
    assert run.returncode == 2
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_a_model_without_a_version_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "risk").mkdir()
    shutil.copy(REPO / "models" / "risk" / "model.yaml", tmp_path / "risk" / "model.yaml")
    run = bench("risk", "--root", str(tmp_path))
    assert run.returncode == 2
    assert "has no published version" in run.stderr and len(run.stderr.strip().splitlines()) == 1


def _scores(url: str, body: dict[str, Any]) -> np.ndarray[Any, Any]:
    r = requests.post(f"{url}/get_score", json=body, timeout=10)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["msg"] == "Successful!" and out["model"] == {"name": "risk", "version": 1}
    return np.array([d["score"] for d in out["data"]])


def test_naive_baseline_answers_the_project_scores(services: dict[str, str], built_models: Path) -> None:
    from gateway.acceptance.mix import model_mix, regroup

    example = json.loads((REPO / "examples" / "risk.json").read_text())  # C999999: not in the store
    bodies = [example, *regroup(model_mix(built_models, "risk", 12, seed=3).bodies, 4)]
    for body in bodies:
        ours, naive = _scores(services["gateway"], body), _scores(services["naive"], body)
        assert ours.shape == (len(body["data"]),)
        np.testing.assert_allclose(naive, ours, atol=1e-5, rtol=0)
    assert len({round(float(s), 6) for b in bodies for s in _scores(services["naive"], b)}) > 10


def test_the_ceiling_apps_make_the_gateways_redis_round_trip_and_one_predict(
    built_models: Path,
    risk_graph: int,
    risk_features: Callable[[int], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``bench/hello_app.py``'s floor apps, the ceilings of ``make bench`` and the logic and MLServer
    benchmarks, do the work they stand for: the gateway's Redis commands for one record (counted
    by the server) and, for the floor app, a Predict the real graph answers."""
    import redis

    from bench import hello_app

    url = risk_features(7)
    monkeypatch.setenv("GATEWAY_MODELS_ROOT", str(built_models))
    monkeypatch.setenv("GATEWAY_REDIS_URL", url)
    monkeypatch.setenv("GATEWAY_GRAPH_TARGETS", json.dumps([f"127.0.0.1:{risk_graph}"]))
    client = redis.Redis.from_url(url)

    def commands() -> dict[str, int]:
        stats = client.info("commandstats")
        return {k: int(stats.get(f"cmdstat_{k}", {}).get("calls", 0)) for k in ("get", "hmget")}

    gateway = json.dumps({"data": [json.loads((REPO / "examples/risk.json").read_text())["data"][0]]})
    for make in (hello_app.create_read_app, hello_app.create_floor_app):
        app = make().test_client()
        before = commands()
        for _ in range(5):
            answer = app.post("/get_score", data=gateway, content_type="application/json")
            assert answer.status_code == 200, answer.text
        after = commands()
        assert {k: after[k] - before[k] for k in after} == {"get": 5, "hmget": 5}
