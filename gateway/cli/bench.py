"""``gateway bench URL|MODEL``: load-test a logic service (and a baseline beside it); table, JSON, plot."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.cli.common import Subparsers


def _numbers(kind: type[int] | type[float]) -> Any:
    def parse(value: str) -> list[Any]:
        try:
            return [kind(v) for v in value.split(",") if v.strip()]
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"{value!r}: not a comma-separated list of numbers") from e

    parse.__name__ = "list"
    return parse


def add_bench_command(sub: Subparsers) -> None:
    sp = sub.add_parser(
        "bench",
        help="load-test a logic service (closed or open loop): table, JSON report and plot",
        description="Send a request mix from client processes with keep-alive connections, each setting "
        "for --duration seconds: closed loop (--clients) or open loop at fixed arrival rates (--rate; "
        "latency counted from each request's scheduled send time). Prints a table and writes a JSON "
        "report and a PNG plot. TARGET is a URL, or a model of the local stack (its deploy.ports.logic). "
        "A target where nothing answers is an input error (exit 2).",
    )
    sp.set_defaults(handler=_bench)
    sp.add_argument("target", metavar="URL|MODEL")
    sp.add_argument(
        "--clients", type=_numbers(int), default=[1, 8, 32], help="client processes (default: 1,8,32)"
    )
    sp.add_argument("--duration", type=float, default=10.0, help="seconds per setting (default: 10)")
    sp.add_argument("--rate", type=_numbers(float), default=None, help="open loop: requests/s, e.g. 100,200")
    sp.add_argument("--warmup", type=float, default=1.0, help="seconds of uncounted load first (default: 1)")
    sp.add_argument("--mix", type=Path, default=None, help="request bodies, one JSON object per line")
    sp.add_argument("--model", default=None, help="the model whose request mix to build (with a URL target)")
    sp.add_argument("--records", type=int, default=None, help="records per request (records form)")
    sp.add_argument("--requests", type=int, default=500, help="distinct request bodies (default: 500)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--baseline", default=None, metavar="URL", help="a second service, run beside the target")
    sp.add_argument(
        "--name", default=None, help="the target's name in the report (default: model or 'target')"
    )
    sp.add_argument("--baseline-name", default="baseline")
    sp.add_argument("--root", type=Path, default=Path("models"), help="models directory (default: models)")
    sp.add_argument(
        "--out", type=Path, default=None, help="report JSON (default: bench/results/bench-*.json)"
    )
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _bench(args: argparse.Namespace) -> int:
    from gateway.acceptance import bench, bench_report
    from gateway.acceptance.mix import model_mix, model_spec, read_mix, regroup

    if args.duration <= 0 or args.warmup < 0 or args.requests < 1:
        raise ValueError("--duration must be above 0, --warmup at least 0, --requests at least 1")
    settings = bench.settings(args.clients, args.rate)
    target, model = _target(args, model_spec)
    targets = [bench.Target(args.name or model or "target", target)]
    if args.baseline is not None:
        targets.append(bench.Target(args.baseline_name, bench.base_url(args.baseline)))
    if len({t.name for t in targets}) < len(targets):
        raise ValueError("--name and --baseline-name must differ")
    if args.mix is not None:
        mix = read_mix(args.mix)
    elif model is not None:
        mix = model_mix(args.root, model, args.requests * (args.records or 1), args.seed)
    else:
        raise ConfigError(f"{target}: give --model NAME (to build its request mix) or --mix FILE")
    bodies = regroup(mix.bodies, args.records) if args.records is not None else mix.bodies
    for t in targets:
        bench.check_answers(t)
    config = bench.BenchConfig(
        targets,
        settings,
        bench.encode(bodies),
        duration=args.duration,
        warmup=args.warmup,
        mix={"source": mix.source, "records_per_request": args.records},
    )
    report = bench.run(config, progress=not args.quiet and sys.stderr.isatty())
    out = args.out or Path("bench/results") / f"bench-{targets[0].name}-{datetime.now():%Y%m%d-%H%M%S}.json"
    png = bench_report.write(report, out)
    print(bench_report.table(report))
    print(f"report {out}, plot {png}")
    return 0


def _target(args: argparse.Namespace, model_spec: Any) -> tuple[str, str | None]:
    """(base URL, model whose mix to build) from TARGET and --model."""
    from gateway.acceptance.bench import base_url

    if "://" in args.target:
        if args.model is not None:
            model_spec(args.root, args.model)
        return base_url(args.target), args.model
    spec = model_spec(args.root, args.target)
    if spec.deploy is None:
        raise ConfigError(f"{args.root / args.target / 'model.yaml'}: no deploy.ports.logic; give a URL")
    return f"http://127.0.0.1:{spec.deploy.ports.logic}", args.target
