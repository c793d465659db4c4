"""graph-server CPU per Predict: the ranking call (``ctr``, 100 rows) from concurrent clients.

Each server configuration is one graph-server process serving the same model
version. The servers are measured in turn, round after round, so a noisy
machine affects them alike; the figure per server is the median over rounds.
For each measurement window the server's CPU (utime + stime of its process
from /proc) is divided by the Predicts answered in that window, beside qps and
client-side p50/p99. Clients are separate processes (threads spread over
``--max-client-procs``), each sending what the logic tier sends: every
signature input as ``tensor_content``, the output filtered to one alias.

By default two servers run: TensorFlow's default thread pools, and the settings
the local stack passes (``TF_FLAGS`` and ``GRAPH_ENV`` in gateway/deploy/serving.py).
``--baseline REF`` adds servers running the ``gateway`` package as committed at
REF (``--baseline-config``, default: TensorFlow's defaults), so a change is
measured against its own starting point in the same run; the ratio column is
CPU per request against the first server.

    python -m bench.graph_cpu_bench [--models-root DIR] [--baseline HEAD~3] \
        [--config intra1=--tensorflow_intra_op_parallelism=1] [--config "x=--flag VAR=value"]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.graph_bench import REPO, Load, Server, client_process, start_server
from gateway.deploy.serving import GRAPH_ENV, TF_FLAGS
from gateway.procs import cpu_seconds

DEFAULT_CONFIGS = (
    "default=",
    "stack=" + " ".join([*TF_FLAGS, *(f"{k}={v}" for k, v in GRAPH_ENV.items())]),
)


def signature_inputs(port: int, model: str, signature: str) -> tuple[dict[str, int], str]:
    """({input alias: row width}, first output alias) from GetModelMetadata."""
    import grpc

    from gateway.wire.protos import get_model_metadata_pb2, prediction_service_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        req.model_spec.name = model
        resp = prediction_service_pb2_grpc.PredictionServiceStub(ch).GetModelMetadata(req, timeout=10)
    sigmap = get_model_metadata_pb2.SignatureDefMap()
    resp.metadata["signature_def"].Unpack(sigmap)
    sig = sigmap.signature_def[signature]
    widths = {alias: int(info.tensor_shape.dim[-1].size) for alias, info in sig.inputs.items()}
    return widths, sorted(sig.outputs)[0]


@dataclass
class Window:
    qps: float
    cpu_us: float
    p50_ms: float
    p99_ms: float
    errors: int


def measure(server: Server, sig: tuple[dict[str, int], str], args: Any) -> Window:
    import numpy as np

    widths, output = sig
    procs = min(args.clients, args.max_client_procs)
    per = [args.clients // procs + (1 if i < args.clients % procs else 0) for i in range(procs)]
    start = time.time() + args.warmup + 0.5 * procs  # the client processes need time to start
    end = start + args.duration
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    load = [
        Load(server.port, args.model, args.signature, widths, output, args.rows, n, start, end) for n in per
    ]
    workers = [ctx.Process(target=client_process, args=(ld, results)) for ld in load]
    for w in workers:
        w.start()
    time.sleep(max(0.0, start - time.time()))
    cpu0 = cpu_seconds([server.proc.pid])
    time.sleep(max(0.0, end - time.time()))
    cpu1 = cpu_seconds([server.proc.pid])
    collected = [results.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(30)
    lat = np.array([x for latencies, _ in collected for x in latencies])
    errors = sum(e for _, e in collected)
    n = max(1, lat.size)
    p50, p99 = (np.percentile(lat, [50, 99]) * 1e3) if lat.size else (float("nan"), float("nan"))
    return Window(lat.size / args.duration, (cpu1 - cpu0) / n * 1e6, float(p50), float(p99), errors)


def baseline_code(ref: str, scratch: Path) -> Path:
    """The ``gateway`` package as committed at ``ref``, unpacked under ``scratch``."""
    dest = scratch / "baseline"
    dest.mkdir()
    archive = subprocess.run(["git", "archive", ref, "gateway"], cwd=REPO, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def report(names: list[str], windows: dict[str, list[Window]]) -> None:
    def med(name: str, attr: str) -> float:
        return statistics.median(getattr(w, attr) for w in windows[name])

    first = med(names[0], "cpu_us")
    print(
        f"\n{'server':<14} {'qps':>7} {'cpu us/req':>11} {'vs ' + names[0]:>12} {'p50 ms':>7} {'p99 ms':>7} errors"
    )
    for name in names:
        cpu = med(name, "cpu_us")
        errors = sum(w.errors for w in windows[name])
        print(
            f"{name:<14} {med(name, 'qps'):>7.0f} {cpu:>11.0f} {cpu / first:>12.2f} "
            f"{med(name, 'p50_ms'):>7.2f} {med(name, 'p99_ms'):>7.2f} {errors}"
        )


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-root", default=str(REPO / "models"), help="holds <model>/<version>/")
    p.add_argument("--model", default="ctr")
    p.add_argument("--signature", default="serving_default")
    p.add_argument("--rows", type=int, default=100, help="rows per Predict")
    p.add_argument("--clients", type=int, default=8, help="concurrent closed-loop client threads")
    p.add_argument("--max-client-procs", type=int, default=4, help="client threads are spread over this many")
    p.add_argument("--duration", type=float, default=4.0, help="measured seconds per window")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each window")
    p.add_argument("--rounds", type=int, default=3, help="windows per server, interleaved")
    p.add_argument("--baseline", metavar="REF", help="also run the gateway package committed at REF")
    p.add_argument("--baseline-config", action="append", metavar="NAME=FLAGS", help="like --config, for REF")
    p.add_argument(
        "--config",
        action="append",
        metavar="NAME=FLAGS",
        help="a server: name, '=', space-separated flags and VAR=value environment settings "
        "(repeatable; default: TensorFlow's defaults and the local stack's settings)",
    )
    return p.parse_args()


def main() -> int:
    args = parse_args()
    configs = [c.partition("=") for c in (args.config or DEFAULT_CONFIGS)]
    scratch = Path(tempfile.mkdtemp(prefix="graph-cpu-bench-"))
    base = Path(args.models_root).resolve() / args.model
    servers: list[Server] = []
    try:
        runs = [("", REPO, configs)]
        if args.baseline:
            old = [c.partition("=") for c in (args.baseline_config or ["default="])]
            runs.insert(0, ("base-", baseline_code(args.baseline, scratch), old))
        for prefix, code, specs in runs:
            for name, _, spec in specs:
                words = spec.split()
                flags = [w for w in words if w.startswith("-")]
                env = dict(w.partition("=")[::2] for w in words if not w.startswith("-"))
                servers.append(start_server(prefix + name, base, scratch, flags, args.model, code, env))
        sig = signature_inputs(servers[0].port, args.model, args.signature)
        print(
            f"model {args.model} from {base}; {args.rows} rows x {sig[0]} -> {sig[1]}; "
            f"{args.clients} clients in up to {args.max_client_procs} processes; host {os.cpu_count()} CPUs, "
            f"load {os.getloadavg()[0]:.2f}; {args.rounds} x {args.duration:g}s per server",
            flush=True,
        )
        windows: dict[str, list[Window]] = {s.name: [] for s in servers}
        for r in range(args.rounds):
            for s in servers:
                w = measure(s, sig, args)
                windows[s.name].append(w)
                print(f"  round {r + 1} {s.name:<12} {w.qps:7.0f} qps {w.cpu_us:7.0f} us/req", flush=True)
        report([s.name for s in servers], windows)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
