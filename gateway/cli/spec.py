"""``gateway spec check | docs``: a model's spec, checked and documented without starting anything."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.common import existing

if TYPE_CHECKING:
    from gateway.cli.common import Subparsers


def _check(args: argparse.Namespace) -> int:
    from gateway import artifacts
    from gateway.errors import ConfigError
    from gateway.spec import GraphModelSpec, load_spec

    bad = 0
    for path in args.files:
        try:
            spec = load_spec(path)
        except ConfigError as e:
            print(f"gateway spec: {e}", file=sys.stderr)
            bad += 1
            continue
        views = ", ".join(f"{v.name} ({v.entity})" for v in spec.feature_views) or "none"
        versions = artifacts.list_versions(path.parent)
        served = (
            f"graph {spec.graph.model_name}" if isinstance(spec, GraphModelSpec) else "in-process estimator"
        )
        print(
            f"{path}: ok: model {spec.name}, {spec.request.form} requests, {served}, feature views: {views}"
        )
        print(f"  published versions: {versions or 'none yet (gateway export / gateway train)'}")
    return 2 if bad else 0


def _docs(args: argparse.Namespace) -> int:
    from gateway.spec.reference import examples_from, json_schema, reference_text, render, spec_files, stale

    _, missing = reference_text(json_schema(), examples_from(spec_files(args.repo)))
    if missing:
        print(f"gateway spec docs: no example for {missing}: give the field examples=[...]", file=sys.stderr)
        return 2
    if args.check:
        problems = stale(args.repo)
        for line in problems:
            print(f"gateway spec docs: {line}", file=sys.stderr)
        return 1 if problems else 0
    for rel, text in render(args.repo).items():
        target = args.repo / rel
        if not target.is_file() or target.read_text() != text:
            target.write_text(text)
            print(rel)
    return 0


def add_spec_commands(sub: Subparsers) -> None:
    sp = sub.add_parser("spec", help="check a model.yaml, or write its reference (schema and key table)")
    ssub = sp.add_subparsers(dest="action", required=True, metavar="ACTION")
    ck = ssub.add_parser(
        "check",
        help="validate model.yaml files without starting anything",
        description="Read and validate each FILE as the services read it (following extends:): unknown "
        "keys, types, cross-references, the name matching its directory. Exit 2 if any is invalid.",
    )
    ck.set_defaults(handler=_check)
    ck.add_argument("files", type=existing("file"), nargs="+", metavar="FILE")
    dc = ssub.add_parser(
        "docs",
        help="write models/model.schema.json and models/README.md from the spec's types",
        description="The JSON Schema of a spec file and the reference of every key (type, default, meaning, "
        "example), generated from gateway/spec. --check: change nothing, exit 1 if either is stale.",
    )
    dc.set_defaults(handler=_docs)
    dc.add_argument("--check", action="store_true")
    dc.add_argument("--repo", type=Path, default=Path("."))
