"""``gateway models build | train | export | inspect``: the data scientist's commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.common import add_root, existing
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.cli.common import Subparsers


def _models_build(args: argparse.Namespace) -> int:
    from gateway import artifacts
    from gateway.saver.recipe import recipe_path
    from gateway.spec import load_spec

    names = args.names or sorted(p.parent.name for p in args.root.glob("*/model.yaml"))
    todo = []
    for name in names:
        spec = load_spec(args.root / name / "model.yaml")
        has_version = artifacts.latest_version(args.root / name) is not None
        if not recipe_path(spec.recipe or name, args.recipes).is_file():
            if name in args.names or not has_version:  # asked for, or nothing to serve: say why
                raise ConfigError(
                    f"{name}: no fit code at {recipe_path(spec.recipe or name, args.recipes)}: "
                    f"publish its versions with `gateway export {name} ...`"
                )
            print(f"{name}: exported (no fit code), skipped")
            continue
        if args.force or not has_version:
            todo.append(name)
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
        args.model,
        args.root,
        args.saved_model,
        args.transformer,
        args.sample,
        version=args.version,
        allow_drift=tuple(args.allow_drift),
    )
    print(f"{args.model}: exported version {version} at {path}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from gateway.saver.inspect import inspect_version, render_json, render_text

    info = inspect_version(args.path)
    print(render_json(info) if args.json else render_text(info))
    return 0 if info["audit"]["ok"] else 3


def add_saver_commands(sub: Subparsers) -> None:
    ms = sub.add_parser("models", help="train the models that have fit code (transformers/) and no version")
    msub = ms.add_subparsers(dest="action", required=True, metavar="ACTION")
    mb = msub.add_parser(
        "build",
        help="train and publish every model with fit code that has no published version yet",
        description="Train and publish NAME... (default: every models/*/model.yaml) unless it has a version "
        "already (--force: a new version anyway). Models without fit code (exported ones) are skipped "
        "unless named.",
    )
    mb.set_defaults(handler=_models_build, native_quiet=True)
    mb.add_argument("names", nargs="*", metavar="NAME", help="models to build (default: every model)")
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
    tr.set_defaults(handler=_train, native_quiet=True)
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
    ex.set_defaults(handler=_export, native_quiet=True)
    ex.add_argument("model")
    ex.add_argument(
        "--saved-model",
        type=existing("directory"),
        required=True,
        help="SavedModel directory (saved_model.pb, variables/)",
    )
    ex.add_argument("--transformer", type=existing("file"), required=True, help="fitted transformer pickle")
    ex.add_argument(
        "--sample", type=existing("file"), required=True, help="held-out rows, CSV or Parquet (>= 1 row)"
    )
    ex.add_argument("--version", type=int, default=None, help="version number (default: next free)")
    ex.add_argument(
        "--allow-drift",
        action="append",
        default=[],
        choices=["scikit-learn", "numpy", "python"],
        metavar="LIB",
        help="export a pickle written by another version of LIB (recorded; serving must allow it too)",
    )
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
