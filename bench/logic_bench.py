"""Logic-tier benchmark, two parts, each against a baseline measured in the same run.

    python -m bench.logic_bench [--models-root models] [--clients 4] [--requests 1500]

1. CPU per 1-record request (``risk``): the logic service with the graph in echo
   mode (answers without running the model, so only the logic tier's own work
   counts) against a Flask hello-world under identical gunicorn settings, and
   against the same hello-world making one gRPC Predict per request (what the
   call to the graph alone costs a Python logic tier), and against that hello-world
   also reading one record's features from Redis in one round trip (the floor of any
   tier that reads its features and calls its graph; what is left above it pays for
   validation, the transformer, telemetry and the fallbacks). CPU is utime+stime of
   the gunicorn workers from /proc, divided by requests answered. Also: latency, and
   Redis commands per request from INFO commandstats. Goal: the logic service at most
   1.25x the hello-world + 1 Predict.
2. Ranking latency (``ctr``, real graph, 500 different requests): 100 items per
   request from 8 concurrent clients, p50/p99. Closed loop first (each client sends
   again as soon as it is answered: the saturation throughput, where latency is
   mostly queueing), then the same clients paced at 25/50/75% of that throughput,
   latency counted from each request's scheduled send time. Goal: p99 <= 15 ms
   paced at 50%.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import redis
import requests

from bench import REPO
from gateway.deploy.serving import GRAPH_ENV, TF_FLAGS
from gateway.loadgen import LoadResult, run_load
from gateway.procs import (
    Proc,
    children,
    cpu_seconds,
    free_port,
    graph_command,
    logic_command,
    python,
    rss_mb,
    start_redis,
    wait_for,
)

PACED_SHARES = (0.25, 0.5, 0.75)
PACED_SECONDS = 6.0
HEADER = f"{'server':<34} {'reqs':>7} {'req/s':>8} {'cpu us/req':>11} {'p50 ms':>8} {'p99 ms':>8}"


def redis_calls(client: redis.Redis) -> int:
    return sum(int(v["calls"]) for k, v in client.info("commandstats").items() if k != "cmdstat_info")


class Bench:
    """The processes of one benchmark run, all stopped on exit."""

    def __init__(self, root: Path, stack: ExitStack) -> None:
        self.root = root
        self.stack = stack
        self.logs = Path(tempfile.mkdtemp(prefix="logic-bench-"))
        proc, self.redis_port = start_redis(self.logs)
        stack.callback(proc.stop)
        self.redis = redis.Redis(port=self.redis_port)

    def _proc(self, cmd: list[str], name: str, env: dict[str, str] | None = None) -> Proc:
        proc = Proc(cmd, self.logs / f"{name}.log", env=env, cwd=REPO)
        self.stack.callback(proc.stop)
        return proc

    def load_features(self, model: str) -> None:
        tables = [str(p) for p in sorted((self.root / model / "demo").glob("*.parquet"))]
        subprocess.run(
            [
                python(),
                "-m",
                "gateway.cli",
                "features",
                "load",
                model,
                *tables,
                "--root",
                str(self.root),
                "--redis-url",
                f"redis://127.0.0.1:{self.redis_port}/0",
                "-q",
            ],
            check=True,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )

    def graph(self, model: str, *flags: str) -> int:
        port = free_port()
        cmd = graph_command(
            port,
            f"--model_name={model}",
            f"--model_base_path={self.root / model}",
            *TF_FLAGS,  # as the local stack runs it
            *flags,
        )
        g = self._proc(cmd, f"graph-{model}-{port}", env={"TF_CPP_MIN_LOG_LEVEL": "2", **GRAPH_ENV})
        wait_for(lambda: "Running gRPC ModelServer" in g.log.read_text(), 90, f"graph {model}", g)
        return port

    @contextmanager
    def gunicorn(self, app: str, name: str, env: dict[str, str]) -> Iterator[tuple[str, Proc]]:
        port = free_port()
        full = {**env, "GATEWAY_BIND": f"127.0.0.1:{port}"}
        proc = Proc(
            [*logic_command()[:-1], app],
            self.logs / f"{name}.log",
            env=full,
            cwd=REPO,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: requests.get(f"{url}/health", timeout=1).status_code == 200, 60, name, proc)
            yield url, proc
        finally:
            proc.stop()

    def logic_env(self, model: str, graph_port: int) -> dict[str, str]:
        return {
            "GATEWAY_MODEL": model,
            "GATEWAY_MODELS_ROOT": str(self.root),
            "GATEWAY_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "GATEWAY_GRAPH_TARGETS": json.dumps([f"127.0.0.1:{graph_port}"]),
        }

    def measure(
        self,
        url: str,
        proc: Proc,
        body: bytes | list[bytes],
        clients: int,
        per_client: int,
        rate: float | None = None,
    ) -> tuple[LoadResult, float, float]:
        """(load result, worker CPU seconds per request, Redis commands per request)."""
        run_load(f"{url}/get_score", body, clients, max(20, per_client // 10))  # warm workers and connections
        workers = children(proc.pid)
        cpu0, calls0 = cpu_seconds(workers), redis_calls(self.redis)
        result = run_load(f"{url}/get_score", body, clients, per_client, rate=rate)
        cpu, calls = cpu_seconds(workers) - cpu0, redis_calls(self.redis) - calls0
        if result.errors:
            raise RuntimeError(f"{result.errors} failed requests against {url}; see {proc.log}")
        return result, cpu / result.requests, calls / result.requests


def row(name: str, r: LoadResult, cpu_per_req: float | None) -> str:
    cpu = f"{cpu_per_req * 1e6:>11.0f}" if cpu_per_req is not None else f"{'-':>11}"
    return f"{name:<34} {r.requests:>7} {r.qps:>8.0f} {cpu} {r.pct_ms(50):>8.2f} {r.pct_ms(99):>8.2f}"


def cpu_part(b: Bench, clients: int, per_client: int) -> list[str]:
    body = json.dumps({"data": [json.loads((REPO / "examples/risk.json").read_text())["data"][0]]}).encode()
    b.load_features("risk")
    echo = b.graph("risk", "--echo_mode")
    with b.gunicorn("bench.hello_app:create_app()", "hello", {}) as (url, proc):
        hello, hello_cpu, _ = b.measure(url, proc, body, clients, per_client)
    graph_env = {"GATEWAY_GRAPH_TARGETS": json.dumps([f"127.0.0.1:{echo}"])}
    with b.gunicorn("bench.hello_app:create_grpc_app()", "hello-grpc", graph_env) as (url, proc):
        floor, floor_cpu, _ = b.measure(url, proc, body, clients, per_client)
    redis_env = {**graph_env, "GATEWAY_REDIS_URL": f"redis://127.0.0.1:{b.redis_port}/0"}
    with b.gunicorn("bench.hello_app:create_floor_app()", "hello-redis-grpc", redis_env) as (url, proc):
        read, read_cpu, read_calls = b.measure(url, proc, body, clients, per_client)
    with b.gunicorn("gateway.logic.web.app:create_app()", "logic-risk", b.logic_env("risk", echo)) as (
        url,
        proc,
    ):
        logic, logic_cpu, calls = b.measure(url, proc, body, clients, per_client)
    return [
        f"\n1. CPU per 1-record request ({clients} clients, graph in echo mode)",
        HEADER,
        row("flask hello-world", hello, hello_cpu),
        row("hello-world + 1 gRPC Predict", floor, floor_cpu),
        row("... + 1 Redis round trip", read, read_cpu),
        row("logic service (risk)", logic, logic_cpu),
        f"logic / hello-world CPU per request: {logic_cpu / hello_cpu:.2f}x; "
        f"Redis commands per request: {calls:.2f} (the floor's: {read_calls:.2f})",
        f"the gRPC call alone: {floor_cpu / hello_cpu:.2f}x the hello-world; "
        f"the logic service: {logic_cpu / floor_cpu:.2f}x hello-world + 1 Predict (goal <= 1.25x)",
        f"the feature read alone: {read_cpu / floor_cpu:.2f}x hello-world + 1 Predict, leaving "
        f"{max(0.0, 1.25 * floor_cpu - read_cpu) * 1e6:.0f} us of the goal's budget for everything else; "
        f"the logic service spends {(logic_cpu - read_cpu) * 1e6:.0f} us there",
    ]


def ranking_bodies(root: Path, n: int, count: int, seed: int) -> list[bytes]:
    """``count`` requests, each a random user, ``n`` random items of the catalogue and a random context."""
    import pandas as pd

    items = pd.read_parquet(root / "ctr" / "demo" / "item.parquet", columns=["id"])["id"].tolist()
    users = pd.read_parquet(root / "ctr" / "demo" / "user.parquet", columns=["id"])["id"].tolist()
    rnd = random.Random(seed)
    return [
        json.dumps(
            {
                "uid": rnd.choice(users),
                "item_ids": rnd.sample(items, n),
                "context": {"hour": rnd.randrange(24), "device": rnd.choice(["mobile", "desktop", "tablet"])},
            }
        ).encode()
        for _ in range(count)
    ]


def ranking_part(b: Bench, per_client: int, items: int = 100, clients: int = 8) -> list[str]:
    b.load_features("ctr")
    port = b.graph("ctr")
    bodies = ranking_bodies(b.root, items, count=500, seed=7)
    with b.gunicorn("gateway.logic.web.app:create_app()", "logic-ctr", b.logic_env("ctr", port)) as (
        url,
        proc,
    ):
        result, cpu, calls = b.measure(url, proc, bodies, clients, per_client)
        paced = []
        for share in PACED_SHARES:  # the same clients, sending on a schedule below saturation
            rate = share * result.qps
            n = max(20, int(rate * PACED_SECONDS / clients))
            paced.append((share, b.measure(url, proc, bodies, clients, n, rate=rate)))
        rss = [rss_mb(pid) for pid in children(proc.pid)]
    lines = [
        f"\n2. Ranking {items} items per request, {clients} concurrent clients, real graph (ctr)",
        HEADER,
        row("closed loop (saturation)", result, cpu),
    ]
    lines += [row(f"paced at {share:.0%} of saturation", r, c) for share, (r, c, _) in paced]
    half = next(r for share, (r, _, _) in paced if share == 0.5)
    return [
        *lines,
        f"paced at 50%: p99 {half.pct_ms(99):.2f} ms (goal <= 15 ms); Redis commands per request: {calls:.2f}",
        "paced: latency counted from each request's scheduled send time",
        f"logic worker RSS after the runs (item cache filled): {', '.join(f'{m:.0f}' for m in rss)} MB",
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-root", type=Path, default=REPO / "models")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=1500, help="requests per client (part 1)")
    ap.add_argument("--ranking-requests", type=int, default=300, help="requests per client (part 2)")
    args = ap.parse_args()
    root = args.models_root.resolve()
    subprocess.run(
        [python(), "-m", "gateway.cli", "models", "build", "risk", "ctr", "--root", str(root)],
        check=True,
        cwd=REPO,
    )
    with ExitStack() as stack:
        b = Bench(root, stack)
        lines = cpu_part(b, args.clients, args.requests) + ranking_part(b, args.ranking_requests)
    print(
        f"gunicorn: {os.environ.get('GATEWAY_WORKERS', '2')} workers x {os.environ.get('GATEWAY_THREADS', '8')} "
        f"threads ({os.environ.get('GATEWAY_WORKER_CLASS', 'gthread')}); logs in {b.logs}"
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
