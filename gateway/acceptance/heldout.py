"""Held-out rows a version ships, and the ``/get_score`` requests built from them.

Packaging writes ``heldout.parquet`` beside the model files: up to :data:`MAX_ROWS` rows the
model was not fitted on, each with what a request sends (the request fields, the entity ids)
and what the feature store should hold for those entities (hash fields, vectors) when the
version was built. ``gateway verify`` sends them and compares the service's answers and the
feature values it read; ``gateway bench`` uses them as a realistic request mix.

An entity's id column is the entity's request field (``customer_id``), or ``<entity>_id``
(a ranking's items: the request field ``item_ids`` holds a list; one row holds one item).
Rows without an id for some entity are not written: a version built from such rows ships none.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gateway.spec import ModelSpec

HELDOUT_FILE = "heldout.parquet"
MAX_ROWS = 2000
MAX_ITEMS = 20  # items per ranking request built from held-out rows


@dataclass(frozen=True)
class HeldOut:
    """A version's held-out rows and which column holds each entity's id."""

    frame: pd.DataFrame
    keys: dict[str, str]  # entity -> column


def key_columns(spec: ModelSpec, frame: pd.DataFrame) -> dict[str, str] | None:
    """Per entity, the column of ``frame`` holding its ids; None when one has no such column."""
    keys: dict[str, str] = {}
    for name, entity in spec.entities.items():
        for column in (entity.field, f"{name}_id"):
            if column in frame.columns:
                keys[name] = column
                break
        else:
            return None
    return keys


def served_rows(
    spec: ModelSpec, frame: pd.DataFrame, vectors: dict[str, np.ndarray[Any, Any]] | None = None
) -> pd.DataFrame | None:
    """The columns a held-out file keeps: ids, request fields, hash fields present, vectors.

    ``vectors`` gives vector views' values row-aligned with ``frame`` (else the frame's own
    column of that name, if any). None when the rows carry no id for some entity.
    """
    keys = key_columns(spec, frame)
    if keys is None:
        return None
    wanted = list(dict.fromkeys([*keys.values(), *(f.name for f in spec.request.fields)]))
    wanted += [n for v in spec.feature_views if v.kind == "hash" for n in v.fields if n in frame.columns]
    out = frame[[c for c in dict.fromkeys(wanted) if c in frame.columns]].reset_index(drop=True)
    for view in spec.feature_views:
        if view.kind != "vector":
            continue
        values = vectors.get(view.name) if vectors else None
        if values is None and view.name in frame.columns:
            values = np.stack([np.asarray(v, dtype=np.float32) for v in frame[view.name]])
        if values is not None:
            out[view.name] = list(np.asarray(values, dtype=np.float32))
    return out


def write(directory: Path, spec: ModelSpec, rows: pd.DataFrame) -> dict[str, Any]:
    """Write the first :data:`MAX_ROWS` rows; returns the manifest's ``heldout`` entry."""
    keys = key_columns(spec, rows) or {}
    head = rows.head(MAX_ROWS)
    head.to_parquet(directory / HELDOUT_FILE, index=False)
    return {"file": HELDOUT_FILE, "rows": len(head), "keys": keys}


def load(version_dir: Path, manifest: dict[str, Any] | None = None) -> HeldOut:
    """The rows a version ships; FileNotFoundError names the version when it has none."""
    if manifest is None:
        manifest = json.loads((version_dir / "manifest.json").read_text())
    entry = manifest.get("heldout")
    if not entry:
        raise FileNotFoundError(
            f"{version_dir}: this version ships no held-out rows (built before they were recorded, or "
            "from rows without entity ids); give rows with --rows FILE"
        )
    return HeldOut(pd.read_parquet(version_dir / entry["file"]), dict(entry["keys"]))


def read_rows(spec: ModelSpec, path: Path) -> HeldOut:
    """Rows from a file (parquet, csv, or JSON lines), in the held-out layout."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        frame = pd.read_parquet(path)
    elif name.endswith((".jsonl", ".ndjson")):
        frame = pd.read_json(path, lines=True)
    elif name.endswith((".csv", ".csv.gz")):
        frame = pd.read_csv(path)
    else:
        raise ValueError(f"{path}: rows must be a .parquet, .csv or .jsonl file")
    keys = key_columns(spec, frame)
    if keys is None:
        ids = {n: [e.field, f"{n}_id"] for n, e in spec.entities.items()}
        raise ValueError(f"{path}: rows need an id column per entity, one of {ids}")
    return HeldOut(frame, keys)


@dataclass(frozen=True)
class Built:
    """One request body and the held-out rows it scores, in the order the answer lists them."""

    body: dict[str, Any]
    rows: list[int]


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value (what JSON and comparisons take)."""
    return value.item() if isinstance(value, np.generic) else value


def _typed(value: Any, kind: str) -> Any:
    """A stored cell as the request field's type (tables keep integers as floats)."""
    value = plain(value)
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "string" and not isinstance(value, str):
        return str(value)
    return value


def build_requests(
    spec: ModelSpec, held: HeldOut, n: int, seed: int = 0, per_request: int = 1
) -> list[Built]:
    """Up to ``n`` request bodies from held-out rows drawn at random (without replacement).

    Records form: ``per_request`` rows per body. Ranking form: the drawn rows grouped by user
    (up to :data:`MAX_ITEMS` distinct items each), the context of the group's first row.
    """
    frame = held.frame
    order = list(range(len(frame)))
    random.Random(seed).shuffle(order)
    fields: dict[str, str] = {f.name: f.type for f in spec.request.fields if f.name in frame.columns}
    ranking = spec.request.ranking
    if spec.request.form == "ranking" and ranking is not None:
        return _ranking(frame, held.keys, ranking, fields, order, n)
    out: list[Built] = []
    for start in range(0, len(order), per_request):
        if len(out) >= n:
            break
        chunk = order[start : start + per_request]
        records = []
        for i in chunk:
            rec = {f: _typed(frame.at[i, f], kind) for f, kind in fields.items()}
            for entity, column in held.keys.items():
                rec[spec.entities[entity].field] = str(frame.at[i, column])
            records.append(rec)
        out.append(Built({"data": records}, chunk))
    return out


def _ranking(
    frame: pd.DataFrame, keys: dict[str, str], ranking: Any, fields: dict[str, str], order: list[int], n: int
) -> list[Built]:
    user_col, item_col = keys[ranking.user_entity], keys[ranking.item_entity]
    groups: dict[str, list[int]] = {}
    for i in order:
        groups.setdefault(str(frame.at[i, user_col]), []).append(i)
    out: list[Built] = []
    for user, rows in groups.items():
        if len(out) >= n:
            break
        seen: dict[str, int] = {}
        for i in rows:
            seen.setdefault(str(frame.at[i, item_col]), i)
        chosen = list(seen.values())[:MAX_ITEMS]
        body = {
            ranking.user_field: user,
            ranking.items_field: [str(frame.at[i, item_col]) for i in chosen],
            ranking.context_field: {f: _typed(frame.at[chosen[0], f], k) for f, k in fields.items()},
        }
        out.append(Built(body, chosen))
    return out


def sample_requests(
    models_root: Path, model: str, n: int, seed: int = 0, version: int | None = None
) -> list[dict[str, Any]]:
    """``n`` request bodies from the held-out rows of ``version`` (default: the newest)."""
    from gateway import artifacts
    from gateway.spec import load_spec

    spec = load_spec(models_root / model / "model.yaml")
    base = models_root / model
    if version is None:
        version = artifacts.latest_version(base)
        if version is None:
            raise FileNotFoundError(f"{base}: no published version")
    vdir = artifacts.version_dir(base, version)
    return [b.body for b in build_requests(spec, load(vdir), n, seed)]
