"""What ``gateway features load`` and ``gateway features get`` do, callable from Python too.

``make up`` (``gateway.stack``) loads the demo tables through :func:`load_file`,
so the local stack exercises exactly the command operators run. Reads go through
the logic service's own :class:`~gateway.featurestore.reader.FeatureReader`, so
``features get`` shows what a scoring request would see, defaults included.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from gateway.featurestore.load import DEFAULT_CHUNK, DEFAULT_KEEP, LoadSummary, load_entity, update_entity
from gateway.featurestore.table import entity_views, read_table
from gateway.spec import ModelSpec


def connect(url: str, cluster: bool = False, timeout_s: float = 30.0, password: str | None = None) -> Any:
    """A client for bulk work: long timeouts, one connection pool."""
    import redis
    from redis.cluster import RedisCluster

    opts: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": 5.0}
    if password is not None:
        opts["password"] = password
    return RedisCluster.from_url(url, **opts) if cluster else redis.Redis.from_url(url, **opts)


def entity_of(spec: ModelSpec, path: Path, entity: str | None) -> str:
    """The entity a file holds: given, or the file name up to its first dot (``user.parquet`` -> user)."""
    name = entity or path.name.split(".", 1)[0]
    known = sorted({v.entity for v in spec.feature_views})
    if name not in known:
        raise ValueError(
            f"{path}: entity {name!r} has no feature view in {spec.name} (known: {known}); use --entity"
        )
    return name


def load_file(
    client: Any,
    spec: ModelSpec,
    path: Path,
    *,
    entity: str | None = None,
    incremental: bool = False,
    keep: int = DEFAULT_KEEP,
    chunk: int = DEFAULT_CHUNK,
    quiet: bool = False,
) -> LoadSummary:
    """Read, validate and load one file, with a progress bar on a terminal's stderr."""
    from tqdm import tqdm

    ent = entity_of(spec, path, entity)
    table = read_table(path)
    show = not quiet and sys.stderr.isatty()
    with tqdm(
        total=len(table), unit="rows", desc=f"{spec.name}/{ent}", file=sys.stderr, disable=not show
    ) as bar:
        if incremental:
            return update_entity(client, spec, ent, table, chunk=chunk, progress=bar.update)
        return load_entity(client, spec, ent, table, chunk=chunk, keep=keep, progress=bar.update)


def get_features(
    client: Any, spec: ModelSpec, entity: str, ids: list[str], cluster: bool = False
) -> list[dict[str, Any]]:
    """Each id's features as the logic service reads them: live snapshot, declared defaults if absent."""
    from gateway.featurestore.reader import FeatureReader

    views = entity_views(spec, entity)
    # The same reader the service runs, restricted to this entity's views.
    reader = FeatureReader(spec.model_copy(update={"feature_views": views}), client, cluster=cluster)
    out = []
    for entity_id in ids:
        feats = reader.fetch({entity: [entity_id]})
        rec: dict[str, Any] = {"entity": entity, "id": entity_id, "snapshot": feats.snapshots.get(entity)}
        rec["found"] = {v.name: feats.missing.get(v.name, 1) == 0 for v in views}
        rec["features"] = {
            v.name: (
                {f: feats.values(f)[0] for f in v.fields}
                if v.kind == "hash"
                else [float(x) for x in feats.vectors[v.name][0]]
            )
            for v in views
        }
        out.append(rec)
    return out


def load_demo(client: Any, root: Path, model: str, quiet: bool = True) -> list[LoadSummary]:
    """Every demo table training wrote for ``model`` (``<root>/<model>/demo/*.parquet``), loaded.

    A model without demo tables (exported elsewhere) is fine when each of its entities has
    a live snapshot already (``gateway features load``); otherwise the error says how to
    make or load one.
    """
    from gateway.featurestore.load import live_snapshot
    from gateway.spec import load_spec

    spec = load_spec(root / model / "model.yaml")
    tables = sorted((root / model / "demo").glob("*.parquet"))
    if not tables:
        entities = sorted({v.entity for v in spec.feature_views})
        missing = [e for e in entities if live_snapshot(client, spec.name, e) is None]
        if missing:
            from gateway.saver.recipe import recipe_path

            train = (
                f", or train it: `gateway train {model}` writes demo tables"
                if recipe_path(spec.recipe or model).is_file()
                else ""
            )
            raise FileNotFoundError(
                f"{model}: no features for {', '.join(missing)}: no demo tables in {root / model / 'demo'} "
                f"and no snapshot in Redis; load yours with `gateway features load {model} FILE`{train}"
            )
    return [load_file(client, spec, path, quiet=quiet) for path in tables]
