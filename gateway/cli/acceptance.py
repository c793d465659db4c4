"""``gateway verify | drift``: accept a deployment (consistency with the offline model) and watch it.

Both talk to a running logic service (``--url``; default: the model's service in the local
stack) and read the published versions from ``--root`` (default: ``models``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.common import add_root, existing
from gateway.cli.versions import admin_token, call, service_url

if TYPE_CHECKING:
    from gateway.cli.common import Subparsers


def service_version(url: str, model: str, given: int | None) -> int:
    """``given``, else the version the service answers with by default."""
    if given is not None:
        return given
    version = call("GET", f"{url}/v1/models/{model}").get("default_version")
    if not version:
        raise ValueError(f"{url}: serves no default version of {model}; name one with --version")
    return int(version)


def _verify(args: argparse.Namespace) -> int:
    from gateway import artifacts
    from gateway.acceptance import heldout
    from gateway.acceptance.verify import verify
    from gateway.spec import load_spec

    spec = load_spec(args.root / args.model / "model.yaml")
    url = service_url(args.model, args.url)
    token = admin_token(args.token)
    version = service_version(url, args.model, args.version)
    vdir = artifacts.version_dir(args.root / args.model, int(version))
    held = heldout.read_rows(spec, args.rows) if args.rows else heldout.load(vdir)
    report = verify(
        spec,
        vdir,
        int(version),
        held,
        url,
        token,
        n=args.n,
        tolerance=args.tolerance,
        check_features=args.features == "held",
        seed=args.seed,
        progress=not args.quiet,
    )
    print("\n".join(report.lines()))
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n")
    return 0 if report.ok else 3


def _drift(args: argparse.Namespace) -> int:
    import requests

    from gateway import artifacts
    from gateway.acceptance import drift

    url = service_url(args.model, args.url)
    version = service_version(url, args.model, args.version)
    manifest = artifacts.read_manifest(artifacts.version_dir(args.root / args.model, int(version)))
    if not (manifest.get("baseline") or {}).get("bins"):
        raise ValueError(
            f"{args.model} version {version}: its manifest records no drift baseline (packaged before)"
        )
    resp = requests.get(f"{url}/metrics", timeout=10)
    resp.raise_for_status()
    drifts = drift.report(drift.scrape(resp.text, args.model, int(version)), manifest)
    print("\n".join(drift.lines(args.model, int(version), drifts)))
    if args.plot:
        drift.plot(args.model, int(version), drifts, args.plot)
        print(f"plot: {args.plot}")
    if args.json:
        rows = [{"feature": d.feature, "psi": d.psi, "rows": d.rows, "band": d.band} for d in drifts]
        args.json.write_text(
            json.dumps({"model": args.model, "version": version, "features": rows}, indent=2) + "\n"
        )
    return 0


def add_acceptance_commands(sub: Subparsers) -> None:
    vf = sub.add_parser(
        "verify",
        help="consistency check: the running service answers like the offline model (exit 3 if not)",
        description="Send N requests built from the version's held-out rows (or --rows FILE) to the service, "
        "pinned to the version, and compare each answer with the offline model: the version's pickled "
        "transformer and SavedModel (or estimator) and the spec's post-processing, applied to the feature "
        "values the service read (model path); and those values with the rows' own (feature path). Needs "
        "the admin token: answers then carry the feature values they were computed from. Exit status: 0 "
        "both paths agree; 3 a path failed (the report names the requests, entities and fields); 1 the "
        "service could not be asked; 2 a wrong input.",
    )
    vf.set_defaults(handler=_verify, native_quiet=True)
    vf.add_argument("model")
    vf.add_argument("--url", default=None, help="logic service (default: the model's in the local stack)")
    vf.add_argument(
        "--token", default=None, help="admin token (default: GATEWAY_ADMIN_TOKEN, .run/admin-token)"
    )
    add_root(vf)
    vf.add_argument(
        "--version", type=int, default=None, help="version to check (default: the service's default)"
    )
    vf.add_argument("--n", type=int, default=1000, help="requests to send (default: 1000)")
    vf.add_argument(
        "--tolerance", type=float, default=1e-5, help="largest accepted |served - offline| (1e-5)"
    )
    vf.add_argument(
        "--rows",
        type=existing("file"),
        default=None,
        help="rows to build requests from (.parquet/.csv/.jsonl: an id column per entity, the request "
        "fields, the feature values); default: the held-out rows the version ships",
    )
    vf.add_argument(
        "--features",
        choices=["held", "live"],
        default="held",
        help="held: the live feature values must equal the rows' (default); live: skip that check "
        "(features were refreshed on purpose)",
    )
    vf.add_argument("--seed", type=int, default=0, help="which rows are drawn (default: 0)")
    vf.add_argument("--json", type=Path, default=None, help="also write the report as JSON to this file")
    vf.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    dr = sub.add_parser(
        "drift",
        help="drift report: PSI of live features and scores against the version's baseline, and a plot",
        description="Read the service's /metrics (the drift bins every worker counts served rows into) and "
        "compare with the held-out counts the version's manifest records: the population stability index "
        "per key feature and for the score, with the usual bands (< 0.1 stable, 0.1-0.25 moderate, > 0.25 "
        "significant). The same PSI is the gauge gateway_drift_psi{model,version,feature} on /metrics.",
    )
    dr.set_defaults(handler=_drift)
    dr.add_argument("model")
    dr.add_argument("--url", default=None, help="logic service (default: the model's in the local stack)")
    add_root(dr)
    dr.add_argument(
        "--version", type=int, default=None, help="version to report (default: the service's default)"
    )
    dr.add_argument("--plot", type=Path, default=None, help="write live vs baseline histograms to this PNG")
    dr.add_argument("--json", type=Path, default=None, help="also write the report as JSON to this file")
