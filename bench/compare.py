"""``make bench``: the project's logic service against the naive baseline, in one run.

    python -m bench.compare [--models-root models] [--duration 10] [--clients 1,8] [--records 1,3]

Starts one redis-server with the demo features of ``risk`` and one graph-server serving it
as the local stack does (TensorFlow threads, batching config from the spec), then two logic
services on that Redis and graph under identical gunicorn settings: the project's
(``gateway.logic.web.app``) and the naive one (``bench/naive_app.py``). For each request
size it runs ``gateway bench`` with ``--baseline``, the two alternating setting by setting
over the same request mix, and writes ``bench/results/compare-risk-<N>rec.json`` and
``.png``. Then the ceiling: ``bench/hello_app.py``'s floor app (a Flask hello-world that
makes the same Redis round trip and one Predict per request, and nothing else) under the same
settings, on the same graph, with the same mix (``compare-risk-<N>rec-ceiling.json``): the
throughput no logic tier of this shape can pass on this machine, which bounds the ratio to the
naive baseline any such tier can reach. Prints each run's table, then the summary that
``bench/README.md`` keeps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from bench import REPO
from bench.logic_bench import Bench
from gateway.deploy.serving import batching_config
from gateway.procs import python, wait_for
from gateway.spec import GraphModelSpec, load_spec

MODEL = "risk"


def graph_flags(b: Bench, root: Path) -> list[str]:
    """The local stack's graph flags beyond ``TF_FLAGS``: batching, when the spec asks for it."""
    spec = load_spec(root / MODEL / "model.yaml")
    config = batching_config(spec) if isinstance(spec, GraphModelSpec) else None
    if config is None:
        return []
    path = b.logs / "batching.config"
    path.write_text(config)
    return ["--enable_batching=true", f"--batching_parameters_file={path}"]


def bench_run(
    root: Path, args: argparse.Namespace, records: int, target: list[str], out_name: str
) -> dict[str, Any]:
    """``gateway bench`` of ``target`` (its URL and naming options) on the mix of ``records``-record bodies."""
    out = args.out_dir / f"{out_name}.json"
    cmd = [
        *(python(), "-m", "gateway.cli", "bench", *target),
        *("--model", MODEL, "--root", str(root), "--records", str(records)),
        *("--clients", args.clients, "--duration", str(args.duration), "--out", str(out)),
    ]
    print(f"\n== {records}-record requests: {' '.join(cmd[1:])}", flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def summary(reports: dict[int, dict[str, Any]], ceilings: dict[int, dict[str, Any]]) -> str:
    """The table bench/README.md keeps: per request size and clients, both services and the ratio,
    the share of the gateway's answers that were degraded (a fallback's), and the ceiling (the
    floor app) with its own ratio to the naive baseline."""
    lines = [
        "| records | clients | gateway req/s | naive req/s | ratio | gateway p50 / p99 ms | naive p50 / p99 ms "
        "| gateway degraded | ceiling req/s | ceiling / naive |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for records, report in reports.items():
        ours, naive = (t["settings"] for t in report["targets"])
        top = ceilings[records]["targets"][0]["settings"]
        for a, b, c in zip(ours, naive, top, strict=True):
            lines.append(
                f"| {records} | {a['clients']} | {a['throughput_rps']:.0f} | {b['throughput_rps']:.0f} | "
                f"{_ratio(a, b)} | {_lat(a)} | {_lat(b)} | {a['degraded_share']:.1%} | {c['throughput_rps']:.0f} | "
                f"{_ratio(c, b)} |"
            )
    return "\n".join(lines)


def _ratio(a: dict[str, Any], b: dict[str, Any]) -> str:
    return f"{a['throughput_rps'] / b['throughput_rps']:.2f}x" if b["throughput_rps"] else "-"


def _lat(s: dict[str, Any]) -> str:
    lat = s["latency_ms"]
    return f"{lat['p50']:.2f} / {lat['p99']:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-root", type=Path, default=REPO / "models")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per setting and service")
    ap.add_argument("--clients", default="1,8")
    ap.add_argument("--records", default="1,3", help="records per request, one gateway bench run each")
    ap.add_argument("--out-dir", type=Path, default=REPO / "bench" / "results")
    args = ap.parse_args()
    root = args.models_root.resolve()
    subprocess.run(
        [python(), "-m", "gateway.cli", "models", "build", MODEL, "--root", str(root)], check=True, cwd=REPO
    )
    reports: dict[int, dict[str, Any]] = {}
    ceilings: dict[int, dict[str, Any]] = {}
    with ExitStack() as stack:
        b = Bench(root, stack)
        b.load_features(MODEL)
        graph = b.graph(MODEL, *graph_flags(b, root))
        env = b.logic_env(MODEL, graph)
        urls: dict[str, str] = {}
        with ExitStack() as pair:  # stopped before the ceiling runs, so it has the cores alone
            urls["gateway"], _ = pair.enter_context(
                b.gunicorn("gateway.logic.web.app:create_app()", "gateway", env)
            )
            wait_for(
                lambda: requests.get(f"{urls['gateway']}/ready", timeout=2).status_code == 200,
                60,
                "gateway /ready",
            )
            urls["naive"], _ = pair.enter_context(b.gunicorn("bench.naive_app:create_app()", "naive", env))
            both = [
                urls["gateway"],
                "--name",
                "gateway",
                "--baseline",
                urls["naive"],
                "--baseline-name",
                "naive",
            ]
            for records in (int(r) for r in args.records.split(",")):
                reports[records] = bench_run(root, args, records, both, f"compare-{MODEL}-{records}rec")
        with b.gunicorn("bench.hello_app:create_floor_app()", "ceiling", env) as (urls["ceiling"], _):
            alone = [urls["ceiling"], "--name", "ceiling"]
            for records in reports:
                ceilings[records] = bench_run(
                    root, args, records, alone, f"compare-{MODEL}-{records}rec-ceiling"
                )
    machine = next(iter(reports.values()))["machine"]
    print(
        f"\n{datetime.now():%Y-%m-%d}, {machine['cpu']}, {machine['cpus']} cpus; gunicorn "
        f"{os.environ.get('GATEWAY_WORKERS', machine['cpus'])} workers x {os.environ.get('GATEWAY_THREADS', '8')} "
        f"threads for each; {args.duration:g} s per setting; logs in {b.logs}\n"
    )
    print(summary(reports, ceilings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
