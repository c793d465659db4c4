"""``gateway models build | train | export | inspect``: the data scientist's commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.common import add_root

if TYPE_CHECKING:
    from gateway.cli.common import Subparsers


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


def add_saver_commands(sub: Subparsers) -> None:
    mb = sub.add_parser("models", help="build every model that has no published version yet")
    mb.set_defaults(handler=_models_build)
    mb.add_argument("action", choices=["build"])
    mb.add_argument("names", nargs="*", help="models to build (default: every models/*/model.yaml)")
    mb.add_argument("--force", action="store_true", help="publish a new version even if one exists")
    mb.add_argument("--recipes", type=Path, default=None, help="fit-code directory (default: transformers/)")
    mb.add_argument("--seed", type=int, default=None)
    add_root(mb)

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
    add_root(tr)


def add_handover_commands(sub: Subparsers) -> None:
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
    add_root(ex)

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
