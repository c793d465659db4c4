"""``gateway features load | get``: the online feature store."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from gateway.cli.common import add_redis, add_root, existing, redis_url

if TYPE_CHECKING:
    from gateway.cli.common import Subparsers


def _features_load(args: argparse.Namespace) -> int:
    from gateway.featurestore.commands import connect, load_file
    from gateway.spec import load_spec

    if args.entity and len(args.files) > 1:
        raise ValueError(
            "--entity applies to one file; name files after their entity (user.csv, item.parquet)"
        )
    spec = load_spec(args.root / args.model / "model.yaml")
    client = connect(redis_url(args), args.cluster)
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


def _features_demo(args: argparse.Namespace) -> int:
    from gateway.featurestore.commands import connect, load_demo

    password = args.redis_password_file.read_text().strip() if args.redis_password_file else None
    client = connect(redis_url(args), args.cluster, password=password)
    names = args.models or sorted(p.parent.name for p in args.root.glob("*/demo"))
    for model in names:
        for summary in load_demo(client, args.root, model):
            print(summary.line())
    return 0


def _features_get(args: argparse.Namespace) -> int:
    from gateway.featurestore.commands import connect, get_features
    from gateway.spec import load_spec

    spec = load_spec(args.root / args.model / "model.yaml")
    entities = sorted({v.entity for v in spec.feature_views})
    entity = args.entity or (entities[0] if len(entities) == 1 else None)
    if entity is None:
        raise ValueError(f"{args.model} has entities {entities}: choose one with --entity")
    recs = get_features(connect(redis_url(args), args.cluster), spec, entity, args.ids, args.cluster)
    for rec in recs:
        print(json.dumps(rec, indent=None if args.compact else 2))
    return 0


def add_feature_commands(sub: Subparsers) -> None:
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
    ld.add_argument("files", type=existing("file"), nargs="+", metavar="FILE")
    ld.add_argument(
        "--entity", default=None, help="entity the file holds (default: file name up to the first dot)"
    )
    ld.add_argument("--incremental", action="store_true", help="update changed keys in the live snapshot")
    ld.add_argument("--keep", type=int, default=2, help="snapshots to keep, the live one included (>= 2)")
    ld.add_argument("--chunk", type=int, default=2000, help="rows per pipelined round trip")
    ld.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_redis(ld)
    add_root(ld)

    dm = fsub.add_parser(
        "demo",
        help="load every model's demo tables (what training wrote in models/<name>/demo/)",
        description="Load the demo entity tables of MODEL... (default: every model with a demo/ directory), "
        "each into a new snapshot; what `make up` and the compose loader run.",
    )
    dm.set_defaults(handler=_features_demo)
    dm.add_argument("models", nargs="*", metavar="MODEL")
    dm.add_argument(
        "--redis-password-file", type=existing("file"), default=None, help="a file holding the Redis password"
    )
    add_redis(dm)
    add_root(dm)

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
    add_redis(gt)
    add_root(gt)
