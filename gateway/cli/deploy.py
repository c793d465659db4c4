"""``gateway render | bundle | smoke | release``: what a deployment is made of, and its first check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.cli.common import Subparsers


def _render(args: argparse.Namespace) -> int:
    from gateway.deploy.render import check, render, write

    if args.check:
        problems = check(args.repo)
        for line in problems:
            print(f"gateway render: {line}", file=sys.stderr)
        return 1 if problems else 0
    for line in write(args.repo, render(args.repo)) or ["(up to date)"]:
        print(line)
    return 0


def _bundle(args: argparse.Namespace) -> int:
    from gateway.deploy.bundle import bundle

    versions = bundle(args.repo, args.model, args.out, args.store)
    print(f"{args.model}: versions {versions} bundled into {args.out}")
    return 0


def _release(args: argparse.Namespace) -> int:
    from gateway.deploy.release import read_digests, set_images

    for line in set_images(args.repo, args.env, read_digests(args.digests), args.registry):
        print(f"{args.env}: {line}")
    return 0


def _smoke(args: argparse.Namespace) -> int:
    from gateway.deploy.smoke import smoke

    report = smoke(args.repo, args.model, args.url, args.wait)
    for line in report.lines:
        print(f"{args.model}: {line}")
    return 1 if report.problems else 0


def add_deploy_commands(sub: Subparsers) -> None:
    rd = sub.add_parser(
        "render",
        help="write every deployment file from models/*/model.yaml and deploy/settings.yaml",
        description="The local stack's supervisord config, docker-compose.yml, the Kubernetes base and "
        "overlays, TF-Serving's configs per model. --check: change nothing, fail if a committed file is stale "
        "or the graph image's TF-Serving is not the TensorFlow versions are exported with.",
    )
    rd.set_defaults(handler=_render)
    rd.add_argument("--check", action="store_true")
    rd.add_argument("--repo", type=Path, default=Path("."))

    bd = sub.add_parser(
        "bundle",
        help="the build context of a model's logic and graph images: source, specs, versions, configs",
    )
    bd.set_defaults(handler=_bundle)
    bd.add_argument("model")
    bd.add_argument("--out", type=Path, required=True)
    bd.add_argument(
        "--store", type=Path, default=None, help="where published versions live (default: models/)"
    )
    bd.add_argument("--repo", type=Path, default=Path("."))

    sm = sub.add_parser(
        "smoke",
        help="the README example of MODEL against a running logic service: health, ready, one answer",
        description="Liveness, readiness (waits up to --wait s), then examples/MODEL.json through /get_score: "
        "a 200 envelope, not degraded, one record per row or top_k requested items in score order. "
        "Exit 1 when any check fails (the pipeline rolls back).",
    )
    sm.set_defaults(handler=_smoke)
    sm.add_argument("model")
    sm.add_argument("--url", required=True, help="the logic service, e.g. http://127.0.0.1:8000")
    sm.add_argument("--wait", type=float, default=60.0, help="seconds to wait for /ready (default: 60)")
    sm.add_argument("--repo", type=Path, default=Path("."))

    rl = sub.add_parser(
        "release",
        help="pin an environment's overlay to the image digests the pipeline built",
        description="Set every image of deploy/k8s/overlays/ENV to its digest from DIGESTS (JSON: image name "
        "-> sha256:...), so `kubectl apply -k` deploys exactly those images; the same file promotes them on.",
    )
    rl.set_defaults(handler=_release)
    rl.add_argument("env")
    rl.add_argument("digests", type=Path)
    rl.add_argument("--registry", default=None, help="the registry the images were pushed to")
    rl.add_argument("--repo", type=Path, default=Path("."))
