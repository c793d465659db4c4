"""CPU the logic service's web layer adds per 1-record request, in-process, against a Flask hello-world.

    python -m bench.web_overhead [--models-root models] [--requests 3000] [--rounds 5]

Both apps are driven through ``app.wsgi_app(environ, start_response)`` with a
prebuilt environ (no HTTP server, no sockets on the client side), with
prometheus_client in multiprocess mode and the access log going to a file, as
under gunicorn. The logic app talks to a real redis-server and a graph-server in
``--echo_mode``; the time spent inside ``Scorer.score`` is measured separately
(on the calling thread) and subtracted, so "web layer" is everything else:
Flask, the request hooks, metrics, the access log, request ids and the response.
A third run replays one real ``Scorer.score`` result for every request: the web
layer alone, without the caches the Redis and gRPC calls disturb in between.
Per-request figures are medians over rounds; compare the ratios, not the numbers.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import REPO

os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="web-overhead-metrics-"))
os.environ.setdefault("GRPC_EXPERIMENTS", "-event_engine_client")

from bench.logic_bench import Bench

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def make_environ(body: bytes) -> dict[str, Any]:
    from werkzeug.test import EnvironBuilder

    builder = EnvironBuilder(path="/get_score", method="POST", data=body, content_type="application/json")
    env = builder.get_environ()
    env["REMOTE_ADDR"] = "127.0.0.1"
    return env


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    if not status.startswith("200"):
        raise RuntimeError(f"unexpected status {status}")


def run(app: WsgiApp, environ: dict[str, Any], body: bytes, n: int) -> tuple[float, float]:
    """(thread CPU seconds per request, process CPU seconds per request) over ``n`` requests."""
    t0, p0 = time.thread_time(), time.process_time()
    for _ in range(n):
        env = dict(environ)
        env["wsgi.input"] = io.BytesIO(body)
        out = app(env, _start_response)
        for _chunk in out:
            pass
        close = getattr(out, "close", None)
        if close is not None:
            close()
    return (time.thread_time() - t0) / n, (time.process_time() - p0) / n


class TimedScore:
    """Wraps ``Scorer.score`` and sums its calling-thread CPU time."""

    def __init__(self, inner: Callable[[Any], Any]) -> None:
        self.inner = inner
        self.cpu = 0.0

    def __call__(self, payload: Any) -> Any:
        t0 = time.thread_time()
        try:
            return self.inner(payload)
        finally:
            self.cpu += time.thread_time() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-root", type=Path, default=REPO / "models")
    ap.add_argument("--requests", type=int, default=3000, help="requests per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", type=Path, help="write a cProfile of the logic app's rounds here")
    args = ap.parse_args()
    root = args.models_root.resolve()
    body = json.dumps({"data": [json.loads((REPO / "examples/risk.json").read_text())["data"][0]]}).encode()
    with ExitStack() as stack:
        b = Bench(root, stack)
        b.load_features("risk")
        echo = b.graph("risk", "--echo_mode")
        access = open(b.logs / "access.log", "w")  # noqa: SIM115  # closed by the stack
        stack.callback(access.close)
        real_stderr, sys.stderr = sys.stderr, access
        try:
            results = measure(b, echo, body, args)
        finally:
            sys.stderr = real_stderr
    hello, logic, scorer, alone = results
    web = logic - scorer
    print(f"in-process, {args.rounds} rounds x {args.requests} requests; logs in {b.logs}")
    print(f"{'':<28} {'thread cpu us/req':>18}")
    print(f"{'flask hello-world':<28} {hello * 1e6:>18.1f}")
    print(f"{'logic app, whole request':<28} {logic * 1e6:>18.1f}")
    print(f"{'  of which Scorer.score':<28} {scorer * 1e6:>18.1f}")
    print(f"{'  of which web layer':<28} {web * 1e6:>18.1f}")
    print(f"{'logic app, Scorer replayed':<28} {alone * 1e6:>18.1f}")
    print(f"web layer / hello-world: {web / hello:.2f}x (over it: {(web - hello) * 1e6:.1f} us)")
    print(f"web layer alone / hello-world: {alone / hello:.2f}x (over it: {(alone - hello) * 1e6:.1f} us)")
    return 0


def measure(b: Bench, echo: int, body: bytes, args: argparse.Namespace) -> tuple[float, float, float, float]:
    from bench.hello_app import create_app as hello_app
    from gateway.logic.web.app import create_app
    from gateway.logic.web.state import app_state
    from gateway.settings import Settings

    env = b.logic_env("risk", echo)
    settings = Settings(
        model="risk",
        models_root=Path(env["GATEWAY_MODELS_ROOT"]),
        redis_url=env["GATEWAY_REDIS_URL"],
        graph_targets=json.loads(env["GATEWAY_GRAPH_TARGETS"]),
    )
    logic = create_app(settings)
    scorer = app_state(logic).scorer
    timed = TimedScore(scorer.score)
    scorer.score = timed
    hello = hello_app()
    environ = make_environ(body)
    for app in (hello.wsgi_app, logic.wsgi_app):
        run(app, environ, body, 300)  # warm up
    canned = scorer.score(json.loads(body))
    hello_runs, logic_runs, scorer_runs, alone_runs = [], [], [], []
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    for _ in range(args.rounds):
        hello_runs.append(run(hello.wsgi_app, environ, body, args.requests)[0])
        timed.cpu = 0.0
        if profiler is not None:
            profiler.enable()
        logic_runs.append(run(logic.wsgi_app, environ, body, args.requests)[0])
        if profiler is not None:
            profiler.disable()
        scorer_runs.append(timed.cpu / args.requests)
        scorer.score = lambda payload: canned
        alone_runs.append(run(logic.wsgi_app, environ, body, args.requests)[0])
        scorer.score = timed
    if profiler is not None:
        profiler.dump_stats(args.profile)
    med = statistics.median
    return med(hello_runs), med(logic_runs), med(scorer_runs), med(alone_runs)


if __name__ == "__main__":
    sys.exit(main())
