"""``gateway``: one command line for the saver side, the feature store and the local stack.

Heavy imports (TensorFlow, pandas, redis) happen inside the subcommand that
needs them, so ``gateway --help`` and ``gateway inspect`` are instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.errors import ConfigError

Handler = Callable[[argparse.Namespace], int]
DEFAULT_REDIS_URL = "redis://127.0.0.1:6399/0"  # the local stack's Redis (deploy/local/stack.yaml)


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


def _export(args: argparse.Namespace) -> int:
    from gateway.saver.export import export_version

    version, path = export_version(
        args.model, args.root, args.saved_model, args.transformer, args.sample, version=args.version
    )
    print(f"{args.model}: exported version {version} at {path}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from gateway.saver.inspect import inspect_version, render_json, render_text

    info = inspect_version(args.path)
    print(render_json(info) if args.json else render_text(info))
    return 0 if info["audit"]["ok"] else 3


def _features_load(args: argparse.Namespace) -> int:
    from gateway.featurestore.commands import connect, load_file
    from gateway.spec import load_spec

    if args.entity and len(args.files) > 1:
        raise ValueError(
            "--entity applies to one file; name files after their entity (user.csv, item.parquet)"
        )
    spec = load_spec(args.root / args.model / "model.yaml")
    client = connect(args.redis_url, args.cluster)
    for path in args.files:
        s = load_file(
            client,
            spec,
            path,
            entity=args.entity,
            incremental=args.incremental,
            keep=args.keep,
            chunk=args.chunk,
            quiet=args.quiet,
        )
        print(s.line())
    return 0


def _features_get(args: argparse.Namespace) -> int:
    from gateway.featurestore.commands import connect, get_features
    from gateway.spec import load_spec

    spec = load_spec(args.root / args.model / "model.yaml")
    entities = sorted({v.entity for v in spec.feature_views})
    entity = args.entity or (entities[0] if len(entities) == 1 else None)
    if entity is None:
        raise ValueError(f"{args.model} has entities {entities}: choose one with --entity")
    recs = get_features(connect(args.redis_url, args.cluster), spec, entity, args.ids, args.cluster)
    for rec in recs:
        print(json.dumps(rec, indent=None if args.compact else 2))
    return 0


def _stack(args: argparse.Namespace) -> int:
    from gateway import stack

    if args.action == "up":
        return stack.up(args.root, args.stack_file)
    if args.action == "down":
        return stack.down()
    return stack.status()


def _root(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--root", type=Path, default=Path("models"), help="models directory (default: models)")


def _redis(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--redis-url", default=DEFAULT_REDIS_URL, help=f"feature store (default: {DEFAULT_REDIS_URL})"
    )
    sp.add_argument("--cluster", action="store_true", help="the URL is one node of a Redis Cluster")


def _saver_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mb = sub.add_parser("models", help="build every model that has no published version yet")
    mb.set_defaults(handler=_models_build)
    mb.add_argument("action", choices=["build"])
    mb.add_argument("names", nargs="*", help="models to build (default: every models/*/model.yaml)")
    mb.add_argument("--force", action="store_true", help="publish a new version even if one exists")
    mb.add_argument("--recipes", type=Path, default=None, help="fit-code directory (default: transformers/)")
    mb.add_argument("--seed", type=int, default=None)
    _root(mb)

    tr = sub.add_parser(
        "train",
        help="train a model from its fit code and publish a new version",
        description="Train MODEL from transformers/MODEL.py (synthetic data, transformer, network), export "
        "the SavedModel, check it, write warmup records and the manifest, and publish models/MODEL/<next>.",
    )
    tr.set_defaults(handler=_train)
    tr.add_argument("model")
    tr.add_argument("--recipes", type=Path, default=None, help="fit-code directory (default: transformers/)")
    tr.add_argument("--seed", type=int, default=None, help="data and training seed (default: the recipe's)")
    tr.add_argument("--version", type=int, default=None, help="version number (default: next free)")
    _root(tr)


def _handover_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ex = sub.add_parser(
        "export",
        help="package a SavedModel trained elsewhere, its transformer and sample rows into a version",
        description="Turn a data scientist's SavedModel directory, fitted transformer pickle and sample rows "
        "into a published version of MODEL: the signature is checked against models/MODEL/model.yaml, the "
        "pickle is loaded the way the logic service loads it (only sklearn/numpy/scipy/pandas/gateway "
        "classes), the sample rows run through the transformer and the graph (baseline scores; metrics if "
        "the rows have a 'label' column) and become TF-Serving warmup records; then the manifest is "
        "written and the version renamed into place. Sample rows: the spec's transformer columns plus, per "
        "vector view the graph takes, a list column named after the view or columns <view>_0 .. _<dim-1>.",
    )
    ex.set_defaults(handler=_export)
    ex.add_argument("model")
    ex.add_argument(
        "--saved-model", type=Path, required=True, help="SavedModel directory (saved_model.pb, variables/)"
    )
    ex.add_argument("--transformer", type=Path, required=True, help="fitted transformer pickle")
    ex.add_argument("--sample", type=Path, required=True, help="held-out rows, CSV or Parquet (>= 1 row)")
    ex.add_argument("--version", type=int, default=None, help="version number (default: next free)")
    _root(ex)

    ins = sub.add_parser(
        "inspect",
        help="show a version's signatures, tensors and manifest; audit its files (no TensorFlow)",
        description="Show what PATH (a version directory, or a model directory: its latest version) holds: "
        "each MetaGraph's tags, signatures with input/output dtypes, shapes and tensor names, and ops; the "
        "manifest; and an audit (every sha256, unlisted files, library versions recorded vs running). "
        "Exit status 3 if the audit fails.",
    )
    ins.set_defaults(handler=_inspect)
    ins.add_argument("path", type=Path)
    ins.add_argument("--json", action="store_true", help="machine-readable output")


def _feature_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fs = sub.add_parser("features", help="load and read the online feature store (Redis)")
    fsub = fs.add_subparsers(dest="action", required=True, metavar="ACTION")
    ld = fsub.add_parser(
        "load",
        help="load entity tables into a new snapshot and switch the alias atomically",
        description="Validate each FILE (CSV or Parquet: an 'id' column plus the entity's view fields; "
        "vectors as a list column or <view>_0..<view>_<dim-1>) in full, reporting bad rows by line, and "
        "write nothing if any is bad. Then write a new snapshot with pipelined writes, switch the entity's "
        "alias to it in one step (readers see the old or the new snapshot, never a mix) and delete "
        "snapshots beyond --keep. With --incremental, write only the keys whose values differ from the "
        "live snapshot, in place. Key layout: gateway/keys.py.",
    )
    ld.set_defaults(handler=_features_load)
    ld.add_argument("model")
    ld.add_argument("files", type=Path, nargs="+", metavar="FILE")
    ld.add_argument(
        "--entity", default=None, help="entity the file holds (default: file name up to the first dot)"
    )
    ld.add_argument("--incremental", action="store_true", help="update changed keys in the live snapshot")
    ld.add_argument("--keep", type=int, default=2, help="snapshots to keep, the live one included (>= 2)")
    ld.add_argument("--chunk", type=int, default=2000, help="rows per pipelined round trip")
    ld.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _redis(ld)
    _root(ld)

    gt = fsub.add_parser(
        "get",
        help="print the features the logic service would read for entity ids",
        description="Read IDs through the logic service's feature reader (live snapshot; declared defaults "
        "for absent ids, flagged by found=false) and print one JSON object per id.",
    )
    gt.set_defaults(handler=_features_get)
    gt.add_argument("model")
    gt.add_argument("ids", nargs="+", metavar="ID")
    gt.add_argument("--entity", default=None, help="entity of the ids (default: the model's only entity)")
    gt.add_argument("--compact", action="store_true", help="one line per id")
    _redis(gt)
    _root(gt)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gateway", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _saver_commands(sub)
    _handover_commands(sub)
    _feature_commands(sub)
    st = sub.add_parser("stack", help="run the local stack: redis, graph and logic services per model")
    st.set_defaults(handler=_stack)
    st.add_argument("action", choices=["up", "down", "status"])
    st.add_argument("--stack-file", type=Path, default=Path("deploy/local/stack.yaml"))
    _root(st)
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
    except Exception as e:  # Redis down, ...: one line, not a traceback
        if args.verbose:
            raise
        print(f"gateway: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
