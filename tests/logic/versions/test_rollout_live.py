"""Version rollout across both tiers under load: real redis-server, graph-server and gunicorn.

Eight paced clients score the risk model the whole time. Versions are published the way
packaging publishes them (a staged directory renamed into place): version 2 made by
``gateway train``, version 3 by ``gateway export``. Then rollback by label and by
removing a version, and corrupt versions that must be refused. Every answer must be a
200 whose scores are the offline answer of the version it names.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests

from gateway.deploy.serving import GRAPH_ENV, TF_FLAGS, version_flags
from gateway.logic.versions import config_file
from gateway.procs import Proc, free_port, graph_command, http_ok, logic_command, python, wait_for
from gateway.spec import load_spec
from tests.loadgen import Load, Shot, p99
from tests.reference import risk_scores
from tests.support import REPO, start_logic

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.tensorflow]
TOKEN = "rollout-test-token"


@dataclass
class Live:
    root: Path  # what both tiers serve
    side: Path  # where versions are made before they are published
    url: str
    graph: Proc
    logic: Proc
    customers: list[str]

    @property
    def base(self) -> Path:
        return self.root / "risk"

    def publish(self, made: Path, version: int) -> float:
        """Publish a made version as packaging does (staged beside its place, then renamed); the time."""
        staging = self.base / f".tmp-publish-{version}"
        shutil.copytree(made, staging)
        t = time.monotonic()
        staging.rename(self.base / str(version))
        return t

    def status(self) -> dict[int, tuple[str, str]]:
        body = requests.get(f"{self.url}/v1/models/risk", timeout=5).json()
        return {
            int(v["version"]): (v["state"], v["status"]["error_message"])
            for v in body["model_version_status"]
        }

    def request(self, rnd: random.Random) -> dict[str, Any]:
        return {
            "data": [
                {
                    "customer_id": rnd.choice(self.customers),
                    "loan_amount": round(rnd.uniform(1000, 60000), 2),
                    "term_months": rnd.choice([12, 24, 36, 48, 60]),
                    "purpose": rnd.choice(["car", "home", "education", "business", "personal"]),
                }
            ]
        }


def gateway(*args: str) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([python(), "-m", "gateway.cli", *args], check=True, cwd=REPO, env=env, capture_output=True)


@pytest.fixture(scope="module")
def live(
    built_models: Path, risk_features: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("rollout")
    root, side = tmp / "models", tmp / "side"
    for where in (root, side):
        (where / "risk").mkdir(parents=True)
        shutil.copy(built_models / "risk" / "model.yaml", where / "risk" / "model.yaml")
    shutil.copytree(built_models / "risk" / "1", root / "risk" / "1")
    shutil.copytree(built_models / "risk" / "demo", root / "risk" / "demo")
    # Version 2: trained with another seed. Version 3: version 1's graph and transformer handed over.
    gateway("train", "risk", "--root", str(side), "--seed", "7", "--version", "2")
    frame = pd.read_parquet(built_models / "risk" / "demo" / "customer.parquet")
    sample = _sample(load_spec(root / "risk" / "model.yaml").transformer.columns, frame)
    sample.to_parquet(tmp / "sample.parquet")
    v1 = built_models / "risk" / "1"
    gateway(
        "export", "risk", "--root", str(side), "--version", "3", "--saved-model", str(v1),
        "--transformer", str(v1 / "transformer.pkl"), "--sample", str(tmp / "sample.parquet"),
    )  # fmt: skip
    spec = load_spec(root / "risk" / "model.yaml")
    config = root / "risk.config"
    config_file.ensure(config, spec, str(root / "risk"))
    grpc_port = free_port()
    graph = Proc(
        graph_command(
            grpc_port,
            *version_flags(str(config.resolve())),
            *TF_FLAGS,
            "--file_system_poll_wait_seconds=0.25",
        ),
        tmp / "graph.log",
        env={"TF_CPP_MIN_LOG_LEVEL": "2", **GRAPH_ENV},
    )
    port = free_port()
    logic = Proc(
        logic_command(),
        tmp / "logic.log",
        env={
            "GATEWAY_MODEL": "risk",
            "GATEWAY_MODELS_ROOT": str(root),
            "GATEWAY_REDIS_URL": risk_features(11),
            "GATEWAY_GRAPH_TARGETS": json.dumps([f"127.0.0.1:{grpc_port}"]),
            "GATEWAY_BIND": f"127.0.0.1:{port}",
            "GATEWAY_WORKERS": "2",
            "GATEWAY_VERSION_POLL_MS": "250",
            "GATEWAY_MODEL_CONFIG_FILE": str(config),
            "GATEWAY_ADMIN_TOKEN": TOKEN,
            "GATEWAY_ACCESS_LOG": "false",
        },
        cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(http_ok(f"{url}/ready"), 120, "logic service", logic)
        yield Live(root, side, url, graph, logic, frame["id"].tolist()[:2000])
    finally:
        logic.stop()
        graph.stop()
    print("\nrollout figures:", json.dumps(live_report, indent=1))


live_report: dict[str, Any] = {}


def _sample(columns: list[str], customers: pd.DataFrame) -> pd.DataFrame:
    rnd = np.random.default_rng(5)
    n = 300
    rows = customers.sample(n, random_state=5).reset_index(drop=True)
    out = rows.assign(
        loan_amount=rnd.uniform(1000, 60000, n),
        term_months=rnd.choice([12, 24, 36, 48, 60], n),
        purpose=rnd.choice(["car", "home", "education", "business", "personal"], n),
        employment_years=rnd.uniform(0, 20, n),
    )
    return out[columns]


def check_answers(live: Live, shots: list[Shot], per_version: int = 25) -> dict[int, int]:
    """Every answer a 200; a sample per version equal to that version's offline scores."""
    bad = [(s.status, s.error or (s.body or {}).get("msg")) for s in shots if s.status != 200]
    assert not bad, f"{len(bad)} of {len(shots)} answers were not 200: {bad[:5]}"
    by_version: dict[int, list[Shot]] = {}
    for s in shots:
        assert s.version is not None
        by_version.setdefault(s.version, []).append(s)
    for version, answers in by_version.items():
        sample = answers[:: max(1, len(answers) // per_version)][:per_version]
        records = [r for s in sample for r in s.payload["data"]]
        online = np.array([d["score"] for s in sample for d in s.body["data"]])  # type: ignore[index]
        vdir = (
            live.base / str(version)
            if (live.base / str(version)).exists()
            else live.side / "risk" / str(version)
        )
        spec_path = live.base / "model.yaml"
        offline = risk_scores(spec_path, vdir, live.base / "demo" / "customer.parquet", records)
        np.testing.assert_allclose(online, offline, atol=1e-5, rtol=0, err_msg=f"version {version}")
    return {v: len(a) for v, a in sorted(by_version.items())}


def switch(live: Live, load: Load, made: Path, version: int, name: str) -> None:
    """Publish under load; record the time to the first answer from it and p99 around the switch."""
    steady = load.snapshot(since=time.monotonic() - 3)
    published = live.publish(made, version)
    first = load.wait_for(lambda s: s.version == version, 60)
    time.sleep(2)
    window = load.snapshot(since=published - 0.5)
    live_report[name] = {
        "publish_to_first_answer_s": round(first.done - published, 2),
        "steady_p99_ms": round(p99(steady) * 1000, 1),
        "switch_p99_ms": round(p99(window) * 1000, 1),
        "answers_in_switch_window": len(window),
    }
    assert p99(window) <= 2 * p99(steady) + 0.005, live_report[name]  # 5 ms of slack for timer noise


def test_publish_train_then_export_under_load(live: Live) -> None:
    with Load(f"{live.url}/get_score", live.request, clients=8, rate=80) as load:
        time.sleep(4)
        versions = {s.version for s in load.snapshot()}
        assert versions == {1}, [(s.status, s.error, s.body) for s in load.snapshot() if s.version != 1][:3]
        switch(live, load, live.side / "risk" / "2", 2, "publish_v2_train")
        switch(live, load, live.side / "risk" / "3", 3, "publish_v3_export")
        time.sleep(1)
    counts = check_answers(live, load.shots)
    live_report["answers_by_version"] = counts
    assert set(counts) == {1, 2, 3}
    assert live.status()[3][0] == "AVAILABLE" and live.status()[2][0] == "AVAILABLE"  # latest 2: both held


def test_rollback_by_label_then_by_removal_under_load(live: Live) -> None:
    with Load(f"{live.url}/get_score", live.request, clients=8, rate=80) as load:
        time.sleep(1)
        gateway("promote", "risk", "2", "--url", live.url, "--token", TOKEN)
        t = time.monotonic()
        load.wait_for(lambda s: s.version == 2 and s.scheduled > t, 10)
        time.sleep(1.5)
        assert {s.version for s in load.snapshot(since=time.monotonic() - 1)} == {2}
        gateway("promote", "risk", "--unpin", "--url", live.url, "--token", TOKEN)
        load.wait_for(lambda s: s.version == 3, 10)
        gone = live.base / "3"
        t = time.monotonic()
        gone.rename(live.root / "removed-3")  # version 3 taken out: back to version 2
        load.wait_for(lambda s: s.version == 2 and s.scheduled > t + 1, 30)
        time.sleep(2)
        live_report["rollback_by_removal_s"] = round(time.monotonic() - t - 2, 2)
    check_answers(live, load.shots)
    assert 3 not in {s.version for s in load.snapshot(since=time.monotonic() - 1.5)}


def test_corrupt_versions_are_refused_and_the_old_one_keeps_answering(live: Live, tmp_path: Path) -> None:
    bad_transformer = tmp_path / "bad-transformer"
    shutil.copytree(live.side / "risk" / "3", bad_transformer)
    data = bytearray((bad_transformer / "transformer.compiled.npz").read_bytes())
    data[-50] ^= 0xFF
    (bad_transformer / "transformer.compiled.npz").write_bytes(bytes(data))
    bad_graph = tmp_path / "bad-graph"
    shutil.copytree(live.side / "risk" / "3", bad_graph)
    (bad_graph / "saved_model.pb").write_bytes(b"not a SavedModel")
    with Load(f"{live.url}/get_score", live.request, clients=8, rate=80) as load:
        time.sleep(1)
        live.publish(bad_transformer, 4)
        wait_for(lambda: live.status().get(4, ("",))[0] == "END", 30, "version 4 refused")
        live.publish(bad_graph, 5)
        wait_for(lambda: live.status().get(5, ("",))[0] == "END", 60, "version 5 refused")
        time.sleep(1)
    status = live.status()
    assert "sha256" in status[4][1], status
    assert "the graph failed to load it" in status[5][1], status
    check_answers(live, load.shots)
    assert {s.version for s in load.snapshot(since=time.monotonic() - 2)} == {2}  # what served keeps serving


def test_sigterm_under_load_drops_nothing(
    built_models: Path, risk_features: Callable[..., str], risk_graph: int, tmp_path: Path
) -> None:
    logic, url = start_logic(
        "risk", built_models, risk_features(11), tmp_path / "logic.log", risk_graph, ready_s=60,
        GATEWAY_DRAIN_SECONDS="1",
    )  # fmt: skip
    customers = [f"C{i:06d}" for i in range(100)]

    def make(rnd: random.Random) -> dict[str, Any]:
        return {
            "data": [
                {
                    "customer_id": rnd.choice(customers),
                    "loan_amount": 5000,
                    "term_months": 36,
                    "purpose": "car",
                }
            ]
        }

    # A load balancer's view of the service: it stops routing to it once /ready says 503, as a
    # Kubernetes Service does with a pod (GATEWAY_DRAIN_SECONDS covers its reaction time).
    in_rotation = threading.Event()
    in_rotation.set()
    probes: list[int] = []

    def balancer() -> None:
        while in_rotation.is_set():
            try:
                probes.append(requests.get(f"{url}/ready", timeout=1).status_code)
            except requests.RequestException:
                probes.append(0)
            if probes[-1] != 200:
                in_rotation.clear()
            time.sleep(0.05)

    lb = threading.Thread(target=balancer, daemon=True)
    lb.start()
    with Load(f"{url}/get_score", make, clients=8, rate=150, gate=in_rotation.is_set) as load:
        time.sleep(2)
        logic.signal(signal.SIGTERM)
        t = time.monotonic()
        logic.popen.wait(30)
        exited = time.monotonic()
        time.sleep(0.3)
    assert probes[-1] == 503  # readiness turned false first, while the worker was still answering
    answered = [s for s in load.shots if s.status != 0]
    failed = [s for s in load.shots if s.status != 200]
    assert len(answered) > 200 and not failed, [(s.status, s.error) for s in failed][:5]
    assert load.held > 0  # the balancer held requests back once the service said it was leaving
    assert logic.stop() == 0  # exited by itself, cleanly
    live_report["sigterm"] = {
        "answered": len(answered),
        "held_back": load.held,
        "exit_s": round(exited - t, 2),
    }
