"""``backend: sklearn`` against Seldon MLServer's scikit-learn runtime serving the same pipeline.

    python -m bench.mlserver_compare --mlserver /path/to/venv/bin/mlserver [--duration 8] [--clients 1,8]

MLServer is not a dependency of this project; install it in a venv of its own, e.g.::

    python3 -m venv /tmp/mls
    /tmp/mls/bin/pip install mlserver==1.7.1 mlserver-sklearn==1.7.1 uvloop==0.21.0 scikit-learn==<ours>

(``uvloop`` 0.23 crashes its parallel workers; scikit-learn must be the version that pickled
the model). Both serve ``risk_lr`` version N from ``--models-root``:

* the project: gunicorn (one worker per core, 8 threads), the compiled transformer and the
  compiled estimator, features read from Redis (the demo tables), the full ``/get_score`` path
  (validation, one Redis round trip, transform, estimator, post-processing, metrics);
* MLServer: ``mlserver_sklearn.SKLearnModel`` with ``parallel_workers`` = cores, serving
  ``Pipeline([transformer, estimator])`` from the same two pickles (joblib), asked for
  ``predict_proba`` through the V2 REST protocol with the pandas codec. Its requests carry
  every feature value (it has no feature store), taken from the same demo table.

Both get the same held-out records, one per request, from client processes with keep-alive
connections, closed loop, the two alternating setting by setting. Printed per setting:
throughput and p50/p99 of each, the ratio, and the resident memory of each side's workers.
Answers are checked to agree (within 1e-6) before the load starts.

Last, with both stopped, the ceiling: ``bench/hello_app.py``'s read app (a Flask hello-world
that makes the gateway's one Redis round trip and answers a constant) under the same gunicorn
settings and load. No service of this project's shape (Flask under gunicorn, features from
Redis) can pass it here, so its ratio to MLServer bounds the one the project can reach.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import requests

from bench import REPO
from bench.logic_bench import Bench
from gateway import artifacts
from gateway.acceptance.heldout import sample_requests
from gateway.featurestore.table import read_table
from gateway.loadgen import run_load
from gateway.procs import Proc, children, free_port, rss_mb, wait_for
from gateway.spec import load_spec

MODEL = "risk_lr"


def mlserver_repo(vdir: Path, spec_columns: list[str], where: Path) -> Path:
    """An MLServer model repository holding Pipeline([transformer, estimator]) from the version's pickles."""
    import joblib
    from sklearn.pipeline import Pipeline

    transformer = pickle.loads((vdir / "transformer.pkl").read_bytes())
    estimator = pickle.loads((vdir / "model.pkl").read_bytes())
    model_dir = where / MODEL
    model_dir.mkdir(parents=True)
    joblib.dump(Pipeline([("transform", transformer), ("model", estimator)]), model_dir / "model.joblib")
    (model_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": MODEL,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1"},
            }
        )
    )
    return where


def v2_body(record: dict[str, Any], features: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    row = {**features, **record}
    inputs = []
    for name in columns:
        value = row[name]
        if isinstance(value, str):
            inputs.append({"name": name, "shape": [1], "datatype": "BYTES", "data": [value]})
        else:
            inputs.append({"name": name, "shape": [1], "datatype": "FP64", "data": [float(value)]})
    return {"parameters": {"content_type": "pd"}, "inputs": inputs, "outputs": [{"name": "predict_proba"}]}


def request_bodies(
    root: Path, n: int, columns: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The same held-out records as ``/get_score`` bodies and as V2 bodies carrying the features."""
    spec = load_spec(root / MODEL / "model.yaml")
    bodies = sample_requests(root, MODEL, n, seed=11)
    customers = read_table(root / MODEL / "demo" / "customer.parquet").set_index("id")
    view = spec.view("profile")
    v2 = []
    for b in bodies:
        rec = b["data"][0]
        feats = {n: customers.loc[rec["customer_id"], n] for n in view.fields}
        v2.append(
            v2_body(rec, {k: (v.item() if hasattr(v, "item") else v) for k, v in feats.items()}, columns)
        )
    return bodies, v2


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mlserver", type=Path, required=True, help="the mlserver executable of its own venv")
    ap.add_argument("--models-root", type=Path, default=REPO / "models")
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--clients", default="1,8")
    ap.add_argument("--requests", type=int, default=500, help="different request bodies")
    args = ap.parse_args()
    if not args.mlserver.exists():
        raise SystemExit(f"{args.mlserver}: no such file (see the module docstring to install MLServer)")
    root = args.models_root.resolve()
    spec = load_spec(root / MODEL / "model.yaml")
    latest = artifacts.latest_version(root / MODEL)
    if latest is None:
        raise SystemExit(f"{root / MODEL}: no published version (make models)")
    vdir = artifacts.version_dir(root / MODEL, latest)
    columns = list(spec.transformer.columns)
    bodies, v2 = request_bodies(root, args.requests, columns)
    with ExitStack() as stack:
        b = Bench(root, stack)
        b.load_features(MODEL)
        env = b.logic_env(MODEL, free_port())  # no graph: backend sklearn runs in-process
        ours, ours_proc = stack.enter_context(
            b.gunicorn("gateway.logic.web.app:create_app()", "gateway", env)
        )
        wait_for(lambda: requests.get(f"{ours}/ready", timeout=2).status_code == 200, 60, "gateway /ready")
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlserver-")))
        repo = mlserver_repo(vdir, columns, tmp / "models")
        port, grpc_port, metrics_port = free_port(), free_port(), free_port()
        (repo / "settings.json").write_text(
            json.dumps(
                {
                    "http_port": port,
                    "grpc_port": grpc_port,
                    "metrics_port": metrics_port,
                    "parallel_workers": len(children(ours_proc.pid)) or 2,
                    "debug": False,
                }
            )
        )
        mls = Proc([str(args.mlserver), "start", str(repo)], b.logs / "mlserver.log", cwd=repo)
        stack.callback(mls.stop)
        theirs = f"http://127.0.0.1:{port}/v2/models/{MODEL}/infer"
        wait_for(
            lambda: (
                requests.get(f"http://127.0.0.1:{port}/v2/models/{MODEL}/ready", timeout=2).status_code == 200
            ),
            120,
            "mlserver",
            mls,
        )
        check_agreement(ours, theirs, bodies, v2)  # before anything is timed
        ours_bodies = [json.dumps(x).encode() for x in bodies]
        their_bodies = [json.dumps(x).encode() for x in v2]
        print(
            f"{MODEL} version {vdir.name}; {args.duration:g} s per setting, closed loop, 1 record per request"
        )
        print(
            f"{'clients':>7} {'gateway req/s':>14} {'p50/p99 ms':>14} {'mlserver req/s':>15} {'p50/p99 ms':>14} {'ratio':>7}"
        )
        mlserver_qps: dict[int, float] = {}
        for clients in (int(c) for c in args.clients.split(",")):
            r1 = run_load(f"{ours}/get_score", ours_bodies, clients, duration=args.duration)
            r2 = run_load(theirs, their_bodies, clients, duration=args.duration)
            if r1.errors or r2.errors:
                print(f"  errors: gateway {r1.errors}, mlserver {r2.errors}")
            print(
                f"{clients:>7} {r1.qps:>14.0f} {r1.pct_ms(50):>6.2f}/{r1.pct_ms(99):<7.2f} {r2.qps:>15.0f} "
                f"{r2.pct_ms(50):>6.2f}/{r2.pct_ms(99):<7.2f} {r1.qps / r2.qps:>6.1f}x"
            )
            mlserver_qps[clients] = r2.qps
        ours_rss = [rss_mb(p) for p in children(ours_proc.pid)]
        their_rss = [rss_mb(p) for p in _tree(mls.pid)]
        print(f"worker RSS MB: gateway {', '.join(f'{x:.0f}' for x in ours_rss)}; "
              f"mlserver processes {', '.join(f'{x:.0f}' for x in their_rss)}")  # fmt: skip
        mls.stop()
        ours_proc.stop()
        print_ceiling(b, env, ours_bodies, mlserver_qps, args.duration)
    return 0


def check_agreement(ours: str, theirs: str, bodies: list[dict[str, Any]], v2: list[dict[str, Any]]) -> None:
    """SystemExit unless the two services give the same scores for the first 20 bodies (1e-6)."""
    for body, body2 in list(zip(bodies, v2, strict=True))[:20]:
        a = requests.post(f"{ours}/get_score", json=body, timeout=10).json()["data"][0]["score"]
        out = requests.post(theirs, json=body2, timeout=10).json()["outputs"][0]
        c = np.asarray(out["data"], dtype=float).reshape(out["shape"])[0, 1]
        if abs(a - c) > 1e-6:
            raise SystemExit(f"the two services disagree: {a} vs {c} for {body}")


def print_ceiling(
    b: Bench, env: dict[str, str], bodies: list[bytes], mlserver_qps: dict[int, float], duration: float
) -> None:
    """The read app's throughput at each number of clients, and its ratio to MLServer's."""
    with b.gunicorn("bench.hello_app:create_read_app()", "ceiling", env) as (url, _):
        for clients, theirs in mlserver_qps.items():
            r = run_load(f"{url}/get_score", bodies, clients, duration=duration)
            print(
                f"ceiling (hello-world + the Redis round trip), {clients} client(s): {r.qps:.0f} req/s, "
                f"{r.qps / theirs:.1f}x mlserver's"
            )


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


if __name__ == "__main__":
    sys.exit(main())
