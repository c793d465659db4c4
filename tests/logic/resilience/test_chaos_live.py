"""Dependencies failing for real under load: the graph killed and frozen, Redis frozen, overload.

Real redis-server, graph-server and gunicorn; eight paced clients. The figures (latencies,
recovery times) are printed at the end of the module.
"""

from __future__ import annotations

import http.client
import json
import random
import shutil
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import redis
import requests
import yaml

from gateway.deploy.serving import GRAPH_ENV, TF_FLAGS
from gateway.featurestore.load import load_entity, read_table
from gateway.loadgen import run_load
from gateway.procs import (
    Proc,
    free_port,
    graph_command,
    graph_serving,
    start_redis,
    wait_for,
)
from gateway.spec import load_spec
from tests import support
from tests.loadgen import Load, Shot
from tests.reference import risk_light_scores

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DEADLINE_S = 0.3  # the risk spec's graph deadline
FIGURES: dict[str, Any] = {}


@dataclass
class Stack:
    root: Path
    redis: Proc
    redis_port: int
    graph: Proc
    grpc_port: int
    url: str
    customers: list[str]
    tmp: Path

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

    def start_graph(self) -> Proc:
        flags = ["--model_name=risk", f"--model_base_path={self.root / 'risk'}", *TF_FLAGS]
        self.graph = Proc(
            graph_command(self.grpc_port, *flags),
            self.tmp / "graph.log",
            env={"TF_CPP_MIN_LOG_LEVEL": "2", **GRAPH_ENV},
        )
        wait_for(graph_serving(self.grpc_port, "risk"), 90, "graph-server", self.graph)
        return self.graph


def start_logic(root: Path, redis_port: int, grpc_port: int, log: Path, **env: str) -> tuple[Proc, str]:
    return support.start_logic(
        "risk", root, f"redis://127.0.0.1:{redis_port}/0", log, grpc_port, ready_s=90,
        GATEWAY_METRICS_FLUSH_MS="200", **env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def stack(built_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("chaos")
    root = tmp / "models"
    shutil.copytree(built_models / "risk", root / "risk")
    rproc, rport = start_redis(tmp)
    spec = load_spec(root / "risk" / "model.yaml")
    customers = read_table(root / "risk" / "demo" / "customer.parquet")
    load_entity(redis.Redis(port=rport), spec, "customer", customers)
    s = Stack(root, rproc, rport, None, free_port(), "", customers["id"].tolist()[:2000], tmp)  # type: ignore[arg-type]
    s.start_graph()
    logic, s.url = start_logic(root, rport, s.grpc_port, tmp / "logic.log", GATEWAY_VERSION_POLL_MS="250")
    try:
        yield s
    finally:
        logic.stop()
        s.graph.stop()
        rproc.stop()
        print("\nchaos figures:", json.dumps(FIGURES, indent=1))


def check_degraded_scores(stack: Stack, shots: list[Shot]) -> int:
    """Degraded answers from the light model equal the offline light model within 1e-6; their count."""
    light = [s for s in shots if s.body and s.body.get("source") == "light_model"]
    sample = light[:: max(1, len(light) // 40)][:40]
    if sample:
        records = [r for s in sample for r in s.payload["data"]]
        online = np.array([d["score"] for s in sample for d in s.body["data"]])  # type: ignore[index]
        base = stack.root / "risk"
        offline = risk_light_scores(
            base / "model.yaml", base / "1", base / "demo" / "customer.parquet", records
        )
        np.testing.assert_allclose(online, offline, atol=1e-6, rtol=0)
    return len(light)


def test_graph_killed_then_back(stack: Stack) -> None:
    with Load(f"{stack.url}/get_score", stack.request, clients=8, rate=80) as load:
        time.sleep(2)
        stack.graph.signal(signal.SIGKILL)
        killed = time.monotonic()
        time.sleep(4)
        stack.graph.stop()
        restarting = time.monotonic()
        stack.start_graph()
        back = time.monotonic()
        first = load.wait_for(
            lambda s: s.status == 200 and not s.body.get("degraded") and s.scheduled > back, 30
        )
        time.sleep(1)
    after = load.snapshot(since=killed)
    assert all(s.status == 200 for s in load.shots), {s.status for s in load.shots}
    during = [s for s in after if s.done < restarting]
    assert during and all(s.body.get("degraded") for s in during)  # type: ignore[union-attr]
    slowest = max(s.done - s.scheduled for s in after)
    assert slowest <= DEADLINE_S + 0.05, slowest
    n_light = check_degraded_scores(stack, during)
    FIGURES["graph_killed"] = {
        "answers_while_down": len(during),
        "from_light_model": n_light,
        "reasons": sorted({s.body.get("reason") for s in during if s.body}),  # type: ignore[misc]
        "slowest_answer_ms": round(slowest * 1000, 1),
        "graph_back_to_full_answers_s": round(first.done - back, 2),
    }
    assert first.done - back <= 10


def test_graph_frozen_opens_the_circuit(stack: Stack) -> None:
    with Load(f"{stack.url}/get_score", stack.request, clients=8, rate=80) as load:
        time.sleep(1.5)
        stack.graph.signal(signal.SIGSTOP)
        frozen = time.monotonic()
        opened = load.wait_for(lambda s: bool(s.body) and s.body.get("reason") == "circuit_open", 10)
        time.sleep(3)
        stack.graph.signal(signal.SIGCONT)
        thawed = time.monotonic()
        recovered = load.wait_for(
            lambda s: s.status == 200 and not s.body.get("degraded") and s.scheduled > thawed, 30
        )
        time.sleep(0.5)
    assert all(s.status == 200 for s in load.shots)
    # Each worker has its circuit; within a second of the first opening, every worker's is open.
    while_open = [s.service for s in load.snapshot(since=opened.done + 1, until=thawed)]
    p99 = float(np.percentile(while_open, 99))
    assert p99 <= DEADLINE_S, p99
    FIGURES["graph_frozen"] = {
        "circuit_open_after_s": round(opened.done - frozen, 2),
        "p99_while_open_ms": round(p99 * 1000, 1),
        "recovered_after_thaw_s": round(recovered.done - thawed, 2),
    }


def test_an_open_circuit_closes_without_traffic(stack: Stack) -> None:
    # One worker, so every /ready below is the worker whose circuit opened.
    logic, url = start_logic(stack.root, stack.redis_port, stack.grpc_port, stack.tmp / "quiet.log",
                             GATEWAY_WORKERS="1", GATEWAY_VERSION_POLL_MS="250")  # fmt: skip

    def checks() -> dict[str, Any]:
        return dict(requests.get(f"{url}/ready", timeout=5).json()["checks"])

    try:
        rnd = random.Random(11)
        stack.graph.signal(signal.SIGSTOP)
        try:
            for _ in range(40):  # each waits out the deadline, then the fallback answers
                r = requests.post(f"{url}/get_score", json=stack.request(rnd), timeout=5)
                assert r.status_code == 200 and r.json()["degraded"], r.text
                if checks()["circuit"] != "closed":
                    break
            opened = checks()
            assert opened["circuit"] == "open" and opened["full"] is False, opened
        finally:
            stack.graph.signal(signal.SIGCONT)
        thawed = time.monotonic()
        # No request from here on: the version poller probes the graph and closes the circuit.
        wait_for(
            lambda: checks()["full"] is True, 15, "the circuit closed with no traffic", logic, interval=0.1
        )
        closed_after = time.monotonic() - thawed
        body = requests.post(f"{url}/get_score", json=stack.request(rnd), timeout=5).json()
        assert body["code"] == 200 and not body.get("degraded"), body
    finally:
        logic.stop()
    FIGURES["circuit_closed_without_traffic_after_s"] = round(closed_after, 2)


def test_redis_stopped_for_5_seconds(stack: Stack, built_models: Path) -> None:
    # A second service of the same model whose feature view answers 503 without Redis.
    strict_root = stack.tmp / "strict"
    (strict_root / "risk").mkdir(parents=True)
    raw = yaml.safe_load((stack.root / "risk" / "model.yaml").read_text())
    raw["feature_views"][0]["on_unavailable"] = "error"
    (strict_root / "risk" / "model.yaml").write_text(yaml.safe_dump(raw))
    (strict_root / "risk" / "1").symlink_to(stack.root / "risk" / "1")
    strict, strict_url = start_logic(strict_root, stack.redis_port, stack.grpc_port, stack.tmp / "strict.log",
                                     GATEWAY_REDIS_TIMEOUT_MS="100")  # fmt: skip
    ready: list[tuple[float, int]] = []
    try:
        with Load(f"{stack.url}/get_score", stack.request, clients=8, rate=60) as load:
            time.sleep(1)
            stack.redis.signal(signal.SIGSTOP)
            stopped = time.monotonic()
            while time.monotonic() - stopped < 5:
                ready.append((time.monotonic(), requests.get(f"{strict_url}/ready", timeout=5).status_code))
                time.sleep(0.25)
            stack.redis.signal(signal.SIGCONT)
            resumed = time.monotonic()
            while time.monotonic() - resumed < 4 and ready[-1][1] != 200:
                ready.append((time.monotonic(), requests.get(f"{strict_url}/ready", timeout=5).status_code))
                time.sleep(0.1)
            full = load.wait_for(
                lambda s: s.status == 200 and not s.body.get("degraded") and s.scheduled > resumed, 10
            )
    finally:
        strict.stop()
    assert all(s.status == 200 for s in load.shots), {s.status for s in load.shots}  # defaults policy: no 5xx
    during = [s for s in load.snapshot(since=stopped + 0.5) if s.done < resumed]
    reasons = {(s.body or {}).get("reason") for s in during}
    odd = [
        (round(s.sent - stopped, 3), round(s.done - stopped, 3), s.body)
        for s in during
        if (s.body or {}).get("reason") is None
    ]
    # Degraded, every one: scored on default features, or shed while requests waited on Redis.
    assert during and reasons <= {"feature_store_unavailable", "overload"}, (reasons, odd[:3], len(odd))
    codes = [c for _, c in ready]
    assert 503 in codes and codes[-1] == 200  # the 503-policy service: not ready, then ready again
    FIGURES["redis_stopped_5s"] = {
        "answers_while_stopped": len(during),
        "reasons": sorted(str(r) for r in reasons),
        "strict_not_ready_after_s": round(next(t for t, c in ready if c == 503) - stopped, 2),
        "strict_ready_again_after_s": round(
            next(t for t, c in ready if t > resumed and c == 200) - resumed, 2
        ),
        "full_answers_again_after_s": round(full.done - resumed, 2),
    }


def connection_headers(url: str, body: bytes, n: int) -> list[tuple[int, str]]:
    """(status, Connection header) of ``n`` requests sent one after another, on one connection
    for as long as the server keeps it."""
    parts = urlsplit(url)
    out: list[tuple[int, str]] = []
    conn: http.client.HTTPConnection | None = None
    for _ in range(n):
        if conn is None:
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        conn.request("POST", "/get_score", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        out.append((resp.status, (resp.getheader("Connection") or "").lower()))
        if resp.will_close:
            conn.close()
            conn = None
    if conn is not None:
        conn.close()
    return out


def test_overload_is_shed_fast(stack: Stack, built_models: Path) -> None:
    # One worker, a graph that takes ~30 ms per call (batching holds calls up to 30 ms), a budget of
    # 4 requests in flight and 8 threads: 4 spare threads answer what is shed.
    params = stack.tmp / "batching.txt"
    params.write_text(
        "max_batch_size { value: 64 }\nbatch_timeout_micros { value: 30000 }\nnum_batch_threads { value: 2 }\n"
    )
    slow_port = free_port()
    flags = ["--model_name=risk", f"--model_base_path={stack.root / 'risk'}", "--enable_batching",
             f"--batching_parameters_file={params}", *TF_FLAGS]  # fmt: skip
    slow = Proc(
        graph_command(slow_port, *flags),
        stack.tmp / "slow-graph.log",
        env={"TF_CPP_MIN_LOG_LEVEL": "2", **GRAPH_ENV},
    )
    root = stack.tmp / "overload"
    (root / "risk").mkdir(parents=True)
    raw = yaml.safe_load((stack.root / "risk" / "model.yaml").read_text())
    raw["overload"] = {"max_in_flight": 4, "shed": "503"}
    (root / "risk" / "model.yaml").write_text(yaml.safe_dump(raw))
    (root / "risk" / "1").symlink_to(stack.root / "risk" / "1")
    logic = None
    try:
        wait_for(graph_serving(slow_port, "risk"), 90, "slow graph", slow)
        logic, url = start_logic(root, stack.redis_port, slow_port, stack.tmp / "overload.log",
                                 GATEWAY_WORKERS="1", GATEWAY_THREADS="8")  # fmt: skip
        bodies = [json.dumps(stack.request(random.Random(i))).encode() for i in range(200)]
        base = run_load(f"{url}/get_score", bodies, clients=4, per_client=60)  # closed loop at the budget
        saturation = base.qps
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(
                run_load,
                f"{url}/get_score",
                bodies,
                clients=12,
                per_client=int(4 * saturation * 5 / 12),
                rate=4 * saturation,
            )
            time.sleep(0.5)
            probes = connection_headers(url, bodies[0], 40)
            over = running.result()
        log = (stack.tmp / "overload.log").read_text()
    finally:
        if logic is not None:
            logic.stop()
        slow.stop()
    # Latency from the actual send: what the service takes; a client process woken late on these
    # shared cores would otherwise be charged to the service.
    shed = over.service_s[over.statuses == 503]
    served = over.service_s[over.statuses == 200]
    assert over.requests > 0 and set(np.unique(over.statuses)) <= {200, 503}
    assert shed.size > 0 and served.size > 0
    shed_p99, served_p99 = float(np.percentile(shed, 99)), float(np.percentile(served, 99))
    # The app answers a shed request in well under a millisecond; what a client sees on these two
    # shared cores adds the worker's event loop and the scheduling of 12 client processes.
    assert shed_p99 <= 0.025 and shed_p99 < served_p99 / 2, (shed_p99, served_p99)
    assert served_p99 <= 0.25, served_p99  # bounded: no queue grows behind the budget
    assert "WORKER TIMEOUT" not in log
    # A shed answer closes its connection (the client's next one may land on a less busy worker);
    # a scored one keeps it.
    assert {c for status, c in probes if status == 503} == {"close"}, probes
    assert {c for status, c in probes if status == 200} <= {"keep-alive"}, probes
    FIGURES["overload_4x"] = {
        "saturation_rps": round(saturation, 1),
        "offered_rps": round(over.requests / over.elapsed_s, 1),
        "served_share": round(served.size / over.requests, 3),
        "shed_p50_p90_p99_ms": [round(float(np.percentile(shed, q)) * 1000, 2) for q in (50, 90, 99)],
        "served_p99_ms": round(served_p99 * 1000, 1),
    }
