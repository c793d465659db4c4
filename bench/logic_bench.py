"""Logic-tier benchmark: CPU per request against a Flask hello-world, in the same run.

    python -m bench.logic_bench [--models-root models] [--clients 4] [--requests 1500]

Starts a real redis-server, a graph-server in echo mode (answers without running
the model, so only the logic tier's own work is measured) and two gunicorn
servers with identical settings: the logic service and a Flask hello-world.
Both get the same closed-loop load of 1-record requests; CPU time of the
gunicorn workers (utime+stime from /proc) divided by requests answered is the
figure of merit. Also reported: latency, and Redis commands per request from
INFO commandstats. A second logic run against the real graph gives the
end-to-end latency with the model running.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
import requests

from bench.load import LoadResult, run_load
from tests.support import REPO, Proc, free_port, python, wait_for

CLK = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK


@contextmanager
def gunicorn(app: str, env: dict[str, str], logs: Path, name: str) -> Iterator[tuple[str, Proc]]:
    port = free_port()
    proc = Proc(
        [python(), "-m", "gunicorn", "-c", "python:gateway.logic.gunicorn_conf", app],
        logs / f"{name}.log",
        env={**env, "GATEWAY_BIND": f"127.0.0.1:{port}", "GATEWAY_ACCESS_LOG": "true"},
        cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{url}/health", timeout=1).status_code == 200, 60, name, proc)
        yield url, proc
    finally:
        proc.stop()


def measure(
    url: str, proc: Proc, body: bytes, clients: int, per_client: int, rclient: redis.Redis
) -> tuple[LoadResult, float, float]:
    """(load result, worker CPU seconds per request, Redis commands per request)."""
    run_load(f"{url}/get_score", body, clients, max(20, per_client // 10))  # warm every worker and connection
    workers = children(proc.pid)
    before, calls = cpu_seconds(workers), redis_calls(rclient)
    result = run_load(f"{url}/get_score", body, clients, per_client)
    cpu = cpu_seconds(workers) - before
    calls = redis_calls(rclient) - calls
    if result.errors:
        raise RuntimeError(f"{result.errors} failed requests against {url}; see {proc.log}")
    return result, cpu / result.requests, calls / result.requests


def redis_calls(client: redis.Redis) -> int:
    return sum(int(v["calls"]) for k, v in client.info("commandstats").items() if k != "cmdstat_info")


def row(name: str, r: LoadResult, cpu_per_req: float) -> str:
    return (
        f"{name:<28} {r.requests:>7} {r.qps:>9.0f} {cpu_per_req * 1e6:>12.0f} "
        f"{r.pct_ms(50):>8.2f} {r.pct_ms(99):>8.2f}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-root", type=Path, default=REPO / "models")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=1500, help="requests per client")
    args = ap.parse_args()
    root = args.models_root.resolve()
    subprocess.run(
        [python(), "-m", "gateway.cli", "models", "build", "risk", "--root", str(root)], check=True, cwd=REPO
    )
    logs = Path(tempfile.mkdtemp(prefix="logic-bench-"))
    body = json.dumps({"data": [json.loads((REPO / "examples/risk.json").read_text())["data"][0]]}).encode()

    rport = free_port()
    rproc = Proc(
        ["redis-server", "--port", str(rport), "--save", "", "--appendonly", "no"], logs / "redis.log"
    )
    procs = [rproc]
    try:
        rclient = redis.Redis(port=rport)
        wait_for(lambda: bool(rclient.ping()), 20, "redis", rproc)
        subprocess.run(
            [
                python(),
                "-m",
                "gateway.cli",
                "features",
                "load",
                "risk",
                str(root / "risk/demo/customer.parquet"),
                "--root",
                str(root),
                "--redis-url",
                f"redis://127.0.0.1:{rport}/0",
            ],
            check=True,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        graphs = {}
        for mode in ("echo", "real"):
            gport = free_port()
            flags = [f"--port={gport}", "--model_name=risk", f"--model_base_path={root / 'risk'}"]
            if mode == "echo":
                flags.append("--echo_mode")
            g = Proc(
                [python(), "-m", "gateway.graph_server", *flags],
                logs / f"graph-{mode}.log",
                env={"TF_CPP_MIN_LOG_LEVEL": "2"},
            )
            procs.append(g)
            wait_for(lambda g=g: "Running gRPC ModelServer" in g.log.read_text(), 90, f"graph {mode}", g)
            graphs[mode] = gport
        common = {
            "GATEWAY_MODEL": "risk",
            "GATEWAY_MODELS_ROOT": str(root),
            "GATEWAY_REDIS_URL": f"redis://127.0.0.1:{rport}/0",
        }
        lines = []
        with gunicorn("bench.hello_app:create_app()", {}, logs, "hello") as (url, proc):
            hello, hello_cpu, _ = measure(url, proc, body, args.clients, args.requests, rclient)
        lines.append(row("flask hello-world", hello, hello_cpu))
        env = {**common, "GATEWAY_GRAPH_TARGETS": json.dumps([f"127.0.0.1:{graphs['echo']}"])}
        with gunicorn("gateway.logic.app:create_app()", env, logs, "logic-echo") as (url, proc):
            logic, logic_cpu, calls = measure(url, proc, body, args.clients, args.requests, rclient)
        lines.append(row("logic, graph in echo mode", logic, logic_cpu))
        env = {**common, "GATEWAY_GRAPH_TARGETS": json.dumps([f"127.0.0.1:{graphs['real']}"])}
        with gunicorn("gateway.logic.app:create_app()", env, logs, "logic-real") as (url, proc):
            real, real_cpu, _ = measure(url, proc, body, args.clients, args.requests, rclient)
        lines.append(row("logic, real graph", real, real_cpu))
    finally:
        for p in procs:
            p.stop()

    print(
        f"\n{args.clients} closed-loop clients, 1 record per request, gunicorn: "
        f"{os.environ.get('GATEWAY_WORKERS', '2')} workers x {os.environ.get('GATEWAY_THREADS', '4')} threads "
        f"({os.environ.get('GATEWAY_WORKER_CLASS', 'gthread')})"
    )
    print(f"{'server':<28} {'reqs':>7} {'req/s':>9} {'cpu us/req':>12} {'p50 ms':>8} {'p99 ms':>8}")
    print("\n".join(lines))
    print(
        f"\nlogic CPU per request / hello-world CPU per request: {logic_cpu / hello_cpu:.2f}x (goal <= 1.5x)"
    )
    print(f"Redis commands per request (INFO commandstats): {calls:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
