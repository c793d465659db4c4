"""Predict throughput and latency of graph-server on the demo model, beside its own echo floor.

Three graph-server processes serve the same model version in this run:

* ``echo``    ``--echo_mode``: full request handling, zeros instead of a model run (the floor);
* ``model``   the model runs, one session run per request;
* ``batched`` the model runs with ``--enable_batching`` (batch_timeout_micros 0: requests
              merge only while the batch threads are busy).

For each cell (batch size x client threads) every server is measured in turn,
so a noisy machine affects all three alike. Clients are separate processes
(``--max-client-procs``), each with a few threads and one channel, so the Python
client is less of a bottleneck. The ratio column is qps against ``echo`` in the
same cell; the goal is >= 0.60 for the model at batch 1 with 8 client threads.

    python bench/graph_bench.py [--models-root DIR] [--duration 5]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import REPO
from gateway.procs import Proc, free_port, graph_command, graph_serving, wait_for

MODEL = "risk"
GOAL = 0.60


# -- model versions --------------------------------------------------------------
def models_root(arg: str | None, scratch: Path) -> Path:
    if arg:
        return Path(arg)
    repo_models = REPO / "models"
    if any(pb.parent.name.isdigit() for pb in (repo_models / MODEL).glob("*/saved_model.pb")):
        return repo_models
    root = scratch / "models"
    (root / MODEL).mkdir(parents=True)
    shutil.copy(repo_models / MODEL / "model.yaml", root / MODEL / "model.yaml")
    print(f"building the {MODEL} model into {root} ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "gateway.cli", "models", "build", "--root", str(root)],
        cwd=REPO,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
    )
    return root


# -- servers ---------------------------------------------------------------------
@dataclass
class Server:
    name: str
    proc: Proc
    port: int

    def stop(self) -> None:
        self.proc.stop(20)


def start_server(
    name: str,
    base: Path,
    scratch: Path,
    extra: list[str],
    model: str = MODEL,
    code: Path = REPO,
    env: dict[str, str] | None = None,
) -> Server:
    """A graph-server serving ``base`` as ``model``, running the ``gateway`` package found in ``code``."""
    port = free_port()
    full_env = {
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": str(code),
        "GRAPH_SERVER_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    cmd = graph_command(port, f"--model_name={model}", f"--model_base_path={base}", *extra)
    proc = Proc(cmd, scratch / f"graph-{name}.log", env=full_env, cwd=code)
    try:
        wait_for(graph_serving(port, model), 120, f"{name} server", proc, interval=0.1)
    except Exception:
        proc.stop()
        raise
    return Server(name, proc, port)


def signature_input(port: int, signature: str) -> tuple[str, int, str]:
    """(input alias, row width, output alias) of the signature, read from GetModelMetadata."""
    import grpc

    from gateway.wire.protos import get_model_metadata_pb2, prediction_service_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        req.model_spec.name = MODEL
        resp = prediction_service_pb2_grpc.PredictionServiceStub(ch).GetModelMetadata(req, timeout=10)
    sigmap = get_model_metadata_pb2.SignatureDefMap()
    resp.metadata["signature_def"].Unpack(sigmap)
    sig = sigmap.signature_def[signature]
    ((alias, info),) = sig.inputs.items()
    return alias, int(info.tensor_shape.dim[-1].size), sorted(sig.outputs)[0]


# -- clients ---------------------------------------------------------------------
@dataclass(frozen=True)
class Load:
    """What one client process sends: ``rows`` x width float32 per input, from ``threads`` threads."""

    port: int
    model: str
    signature: str
    widths: dict[str, int]  # input alias -> width
    output: str
    rows: int
    threads: int
    start: float  # wall clock: warm-up before, measure after
    end: float


def client_process(load: Load, results: Any) -> None:
    """Closed-loop Predicts until ``load.end``; puts (latencies measured after ``load.start``, errors)."""
    import grpc
    import numpy as np

    from gateway.wire.protos import predict_pb2, prediction_service_pb2_grpc
    from gateway.wire.tensors import write_proto

    channel = grpc.insecure_channel(f"127.0.0.1:{load.port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    rng = np.random.default_rng(os.getpid())
    req = predict_pb2.PredictRequest()
    req.model_spec.name = load.model
    req.model_spec.signature_name = load.signature
    for alias, width in load.widths.items():
        write_proto(req.inputs[alias], rng.normal(size=(load.rows, width)).astype(np.float32))
    req.output_filter.append(load.output)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker() -> None:
        mine: list[float] = []
        failed = 0
        while (t0 := time.time()) < load.end:
            try:
                stub.Predict(req, timeout=30)
            except grpc.RpcError:
                failed += 1
                continue
            if t0 >= load.start:
                mine.append(time.time() - t0)
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=worker) for _ in range(load.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    channel.close()
    results.put((latencies, errors[0]))


@dataclass
class Cell:
    server: str
    batch: int
    clients: int
    qps: float
    p50_ms: float
    p99_ms: float
    errors: int


def measure(server: Server, sig: tuple[str, str, int, str], batch: int, clients: int, args: Any) -> Cell:
    import numpy as np

    signature, alias, width, output = sig
    procs = min(clients, args.max_client_procs)
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    start = time.time() + args.warmup + 0.5 * procs  # leave time for the client processes to start
    end = start + args.duration
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    workers = [
        ctx.Process(
            target=client_process,
            args=(Load(server.port, MODEL, signature, {alias: width}, output, batch, n, start, end), results),
        )
        for n in per
    ]
    for w in workers:
        w.start()
    collected = [results.get(timeout=end - time.time() + 120) for _ in workers]
    for w in workers:
        w.join(30)
    lat = np.array([x for latencies, _ in collected for x in latencies])
    errors = sum(e for _, e in collected)
    if lat.size == 0:
        return Cell(server.name, batch, clients, 0.0, float("nan"), float("nan"), errors)
    return Cell(
        server.name,
        batch,
        clients,
        lat.size / args.duration,
        float(np.percentile(lat, 50) * 1e3),
        float(np.percentile(lat, 99) * 1e3),
        errors,
    )


# -- main ------------------------------------------------------------------------
def report(cells: list[Cell]) -> float | None:
    echo = {(c.batch, c.clients): c.qps for c in cells if c.server == "echo"}
    head = ("server", "batch", "clients", "qps", "p50 ms", "p99 ms", "vs echo")
    print("\n{:<8} {:>5} {:>7} {:>9} {:>8} {:>8} {:>8} errors".format(*head))
    goal = None
    for c in sorted(cells, key=lambda c: (c.batch, c.clients, ["echo", "model", "batched"].index(c.server))):
        floor = echo.get((c.batch, c.clients)) or float("nan")
        ratio = c.qps / floor if floor else float("nan")
        if c.server == "model" and (c.batch, c.clients) == (1, 8):
            goal = ratio
        print(
            f"{c.server:<8} {c.batch:>5} {c.clients:>7} {c.qps:>9.0f} {c.p50_ms:>8.2f} {c.p99_ms:>8.2f} "
            f"{ratio:>8.2f} {c.errors}"
        )
    return goal


def run_cells(servers: list[Server], base: Path, args: Any) -> list[Cell]:
    alias, width, output = signature_input(servers[0].port, args.signature)
    sig = (args.signature, alias, width, output)
    print(
        f"model {MODEL} from {base}; signature {args.signature}: {alias} [batch, {width}] -> {output}\n"
        f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
        f"{args.duration:g}s per cell; clients in up to {args.max_client_procs} processes",
        flush=True,
    )
    cells = []
    for batch in args.batches:
        for clients in args.clients:
            for server in servers:
                cell = measure(server, sig, batch, clients, args)
                print(
                    f"  {server.name:<8} batch {batch:>3} clients {clients}: {cell.qps:8.0f} qps", flush=True
                )
                cells.append(cell)
    return cells


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--models-root", help="models root holding risk/<version>/ (default: models/ or a fresh build)"
    )
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per cell and server")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each cell")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 50])
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    p.add_argument("--max-client-procs", type=int, default=4, help="client threads are spread over this many")
    p.add_argument("--signature", default="score")
    p.add_argument("--no-batched", action="store_true", help="skip the --enable_batching server")
    args = p.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="graph-bench-"))
    servers: list[Server] = []
    try:
        base = models_root(args.models_root, scratch) / MODEL
        batching = scratch / "batching.txt"
        batching.write_text(
            "max_batch_size { value: 512 }\nbatch_timeout_micros { value: 0 }\n"
            "max_enqueued_batches { value: 1000 }\nnum_batch_threads { value: 2 }\n"
        )
        kinds = [("echo", ["--echo_mode"]), ("model", [])]
        if not args.no_batched:
            kinds.append(("batched", ["--enable_batching", f"--batching_parameters_file={batching}"]))
        for name, extra in kinds:
            servers.append(start_server(name, base, scratch, extra))
        cells = run_cells(servers, base, args)
        goal = report(cells)
        if goal is not None:
            verdict = "met" if goal >= GOAL else "NOT met"
            print(f"\nmodel/echo qps at batch 1, 8 clients: {goal:.2f} (goal >= {GOAL:.2f}: {verdict})")
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
