"""The request mix a load test sends: ``/get_score`` bodies, from a file or built for a model.

For a model, the bodies come from the held-out rows its newest version ships
(:func:`gateway.acceptance.heldout.sample_requests`); a version without them gets bodies
built from the spec and the demo entity tables instead: ids drawn from the tables (so the
features are found), other fields drawn from the values ``examples/<model>.json`` uses, else
from the spec (an enum value, the default, the middle of the range).
"""

from __future__ import annotations

import importlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.artifacts import latest_version
from gateway.errors import ConfigError
from gateway.spec import FieldSpec, ModelSpec, load_spec


@dataclass(frozen=True)
class Mix:
    bodies: list[dict[str, Any]]
    source: str
    """Where the bodies come from (shown in the report)."""


def read_mix(path: Path) -> Mix:
    """Bodies from a JSON-lines file, one JSON object per line (blank lines skipped)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise FileNotFoundError(f"--mix {path}: {e.strerror}") from e
    bodies = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
        except ValueError as e:
            raise ValueError(f"--mix {path}, line {number}: not JSON ({e})") from e
        if not isinstance(body, dict):
            raise ValueError(f"--mix {path}, line {number}: a request body must be a JSON object")
        bodies.append(body)
    if not bodies:
        raise ValueError(f"--mix {path}: no request bodies")
    return Mix(bodies, f"file {path}")


def model_spec(root: Path, model: str) -> ModelSpec:
    """The spec of a model that has a published version; ConfigError names what is missing."""
    path = root / model / "model.yaml"
    if not path.is_file():
        have = sorted(p.parent.name for p in root.glob("*/model.yaml"))
        raise ConfigError(f"no model {model!r} under {root} (no {path}; models: {', '.join(have) or 'none'})")
    spec = load_spec(path)
    if latest_version(root / model) is None:
        raise ConfigError(f"model {model!r} has no published version under {root / model} (make models)")
    return spec


def model_mix(root: Path, model: str, n: int, seed: int = 0) -> Mix:
    """``n`` bodies for ``model``: from its newest version's held-out rows, else built (see module doc)."""
    spec = model_spec(root, model)
    try:
        heldout = importlib.import_module("gateway.acceptance.heldout")
        bodies: list[dict[str, Any]] = heldout.sample_requests(root, model, n, seed)
        if bodies:
            return Mix(bodies, f"held-out rows of {model} v{latest_version(root / model)}")
    except (ImportError, AttributeError, FileNotFoundError):
        pass  # an older version ships none: the demo tables will do
    return Mix(demo_bodies(root, spec, n, seed), f"demo tables of {model} (no held-out rows)")


def demo_bodies(root: Path, spec: ModelSpec, n: int, seed: int = 0) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    example = _example(root.parent / "examples" / f"{spec.name}.json")
    ranking = spec.request.ranking
    if spec.request.form == "ranking" and ranking is not None:
        users = _ids(root, spec.name, ranking.user_entity)
        items = _ids(root, spec.name, ranking.item_entity)
        width = min(len(example.get(ranking.items_field) or []) or 10, len(items))
        context = example.get(ranking.context_field) or {}
        return [
            {
                ranking.user_field: rnd.choice(users),
                ranking.items_field: rnd.sample(items, width),
                ranking.context_field: {f.name: _value(f, [context], rnd) for f in spec.request.fields},
            }
            for _ in range(n)
        ]
    records = [r for r in example.get("data") or [] if isinstance(r, dict)]
    ids = {e.field: _ids(root, spec.name, name) for name, e in spec.entities.items()}
    return [
        {
            "data": [
                {
                    **{f.name: _value(f, records, rnd) for f in spec.request.fields if f.name not in ids},
                    **{field: rnd.choice(values) for field, values in ids.items()},
                }
            ]
        }
        for _ in range(n)
    ]


def _example(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _ids(root: Path, model: str, entity: str) -> list[str]:
    import pandas as pd

    from gateway.featurestore.table import ID_COLUMN

    path = root / model / "demo" / f"{entity}.parquet"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no demo table for entity {entity!r} to draw ids from; give bodies with --mix FILE"
        )
    return [str(v) for v in pd.read_parquet(path, columns=[ID_COLUMN])[ID_COLUMN]]


def _value(f: FieldSpec, examples: list[dict[str, Any]], rnd: random.Random) -> Any:
    seen = [r[f.name] for r in examples if r.get(f.name) is not None]
    if seen:
        return rnd.choice(seen)
    if f.enum:
        return rnd.choice(f.enum)
    if f.default is not None:
        return f.default
    if f.type in ("float", "int"):
        low = f.min if f.min is not None else 0.0
        middle = (low + f.max) / 2 if f.max is not None else low + 1
        return int(middle) if f.type == "int" else float(middle)
    return rnd.random() < 0.5 if f.type == "bool" else "x"


def regroup(bodies: list[dict[str, Any]], records: int) -> list[dict[str, Any]]:
    """Records-form bodies with ``records`` records each (the records of all bodies, in order,
    cut anew; a short last body is dropped unless it is the only one); other bodies as they are."""
    if records < 1:
        raise ValueError(f"--records {records}: must be at least 1")
    if not all(isinstance(b.get("data"), list) for b in bodies):
        return bodies
    flat = [r for b in bodies for r in b["data"]]
    out = [{"data": flat[i : i + records]} for i in range(0, len(flat) - records + 1, records)]
    return out or [{"data": flat}]
