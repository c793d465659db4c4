"""Keep-alive connections and load shedding: do connections that landed unevenly spread out?

    python -m bench.shed_spread [--runs 8] [--seconds 4]

A logic service (``risk``, real graph and Redis) under gunicorn with 2 workers and a spec
overlay of ``overload: {max_in_flight: 2, shed: 503}``; 4 closed-loop clients with one
keep-alive connection each, so the two workers have exactly the capacity the clients need
when the connections split 2 and 2. Each run opens fresh connections (they land as the two
workers happen to accept them) and prints the share of shed (503) answers in its first and
second half. Shed answers close their connection, so a run that starts uneven evens out:
the share falls to about 0. Without that (before the change), an uneven run shed 45-49% of
its answers from start to end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import yaml

from bench import REPO
from bench.logic_bench import Bench
from gateway.loadgen import run_load

MODEL = "risk"


def overlay(models: Path, where: Path) -> Path:
    """A models root whose ``risk`` is the built one with a shedding budget of 2."""
    root = where / "models"
    (root / MODEL).mkdir(parents=True)
    raw = yaml.safe_load((models / MODEL / "model.yaml").read_text())
    raw["overload"] = {"max_in_flight": 2, "shed": "503"}
    (root / MODEL / "model.yaml").write_text(yaml.safe_dump(raw))
    for p in (models / MODEL).iterdir():
        if p.name != "model.yaml":
            (root / MODEL / p.name).symlink_to(p)
    return root


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-root", type=Path, default=REPO / "models")
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    models = args.models_root.resolve()
    body = json.dumps(
        {"data": json.loads((REPO / "examples" / f"{MODEL}.json").read_text())["data"][:1]}
    ).encode()
    shares = []
    with ExitStack() as stack:
        b = Bench(models, stack)
        b.load_features(MODEL)
        port = b.graph(MODEL)
        root = overlay(models, Path(stack.enter_context(tempfile.TemporaryDirectory())))
        env = {**b.logic_env(MODEL, port), "GATEWAY_MODELS_ROOT": str(root), "GATEWAY_WORKERS": "2"}
        with b.gunicorn("gateway.logic.web.app:create_app()", "logic", env) as (url, _):
            run_load(f"{url}/get_score", body, 4, duration=1.0)  # warm workers
            for i in range(args.runs):
                r = run_load(f"{url}/get_score", body, 4, duration=args.seconds)
                late = r.due_s > args.seconds / 2
                first, second = (float(np.mean(r.statuses[part] == 503)) for part in (~late, late))
                shares.append((first, second))
                print(f"run {i}: {r.requests} requests, {r.qps:.0f} req/s; shed {first:.1%} in the first half, "
                      f"{second:.1%} in the second", flush=True)  # fmt: skip
    worst = max(s for pair in shares for s in pair)
    print(f"mean shed share: {np.mean([s for s, _ in shares]):.1%} first halves, "
          f"{np.mean([s for _, s in shares]):.1%} second halves; worst half {worst:.1%}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
