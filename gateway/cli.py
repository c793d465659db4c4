"""``gateway``: one command line for the saver side, the feature store and the local stack.

Heavy imports (TensorFlow, pandas, redis) happen inside the subcommand that
needs them, so ``gateway --help`` is instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.errors import ConfigError

Handler = Callable[[argparse.Namespace], int]


def _models_build(args: argparse.Namespace) -> int:
    from gateway import artifacts

    names = args.names or sorted(p.parent.name for p in args.root.glob("*/model.yaml"))
    todo = [n for n in names if args.force or artifacts.latest_version(args.root / n) is None]
    if not todo:
        print(f"models up to date: {', '.join(names)}")
        return 0
    from gateway.saver.train import train

    for name in todo:
        version, path = train(name, args.root, args.recipes, seed=args.seed)
        print(f"{name}: published version {version} at {path}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from gateway.saver.train import train

    version, path = train(args.model, args.root, args.recipes, seed=args.seed, version=args.version)
    print(f"{args.model}: published version {version} at {path}")
    return 0


def _features_load(args: argparse.Namespace) -> int:
    import redis

    from gateway.featurestore.load import load_entity, read_table
    from gateway.spec import load_spec

    spec = load_spec(args.root / args.model / "model.yaml")
    entity = args.entity or args.file.name.split(".")[0]
    s = load_entity(redis.Redis.from_url(args.redis_url), spec, entity, read_table(args.file))
    print(
        f"{s.model}/{s.entity}: {s.rows} rows, {s.keys} keys, {s.bytes} bytes -> snapshot {s.snapshot} "
        f"in {s.seconds:.2f}s"
    )
    return 0


def _stack(args: argparse.Namespace) -> int:
    from gateway import stack

    if args.action == "up":
        return stack.up(args.root, args.stack_file)
    if args.action == "down":
        return stack.down()
    return stack.status()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gateway", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(handler=handler)
        sp.add_argument(
            "--root", type=Path, default=Path("models"), help="models directory (default: models)"
        )
        return sp

    mb = cmd("models", _models_build, "build every model that has no published version yet")
    mb.add_argument("action", choices=["build"])
    mb.add_argument("names", nargs="*", help="models to build (default: all with a model.yaml)")
    mb.add_argument("--force", action="store_true", help="publish a new version even if one exists")
    mb.add_argument("--recipes", type=Path, default=None, help="fit-code directory (default: transformers/)")
    mb.add_argument("--seed", type=int, default=None)

    tr = cmd("train", _train, "train a model from its recipe and publish a new version")
    tr.add_argument("model")
    tr.add_argument("--recipes", type=Path, default=None, help="fit-code directory (default: transformers/)")
    tr.add_argument("--seed", type=int, default=None)
    tr.add_argument("--version", type=int, default=None, help="version number (default: next free)")

    fs = cmd(
        "features", _features_load, "load an entity table (CSV/Parquet) into Redis behind a new snapshot"
    )
    fs.add_argument("action", choices=["load"])
    fs.add_argument("model")
    fs.add_argument("file", type=Path)
    fs.add_argument("--entity", default=None, help="entity the file holds (default: file name stem)")
    fs.add_argument("--redis-url", default="redis://127.0.0.1:6399/0")

    st = cmd("stack", _stack, "run the local stack: redis, graph and logic services per model")
    st.add_argument("action", choices=["up", "down", "status"])
    st.add_argument("--stack-file", type=Path, default=Path("deploy/local/stack.yaml"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args))
    except ConfigError as e:
        print(f"gateway: {e}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"gateway: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
