"""Warm-up requests: valid requests the spec allows, sent through the full path before a version serves.

Built from the spec alone (a value in range for every field; entity ids no feature table
holds, so the feature store answers with the declared defaults), with each string field
the transformer reads set to the category the version saw most in training (from the
manifest's baseline), so an encoder that refuses unknown categories accepts it.
"""

from __future__ import annotations

from typing import Any

from gateway.spec import FieldSpec, ModelSpec

ITEMS = 8  # candidate items of a ranking warm-up request


def typical(f: FieldSpec, frequent: dict[str, str]) -> Any:
    if f.type == "string":
        if f.enum:
            return f.enum[0]
        return frequent.get(f.name, "x")[: f.max_length]
    if f.type == "bool":
        return False
    bound = f.min if f.min is not None else f.max if f.max is not None else 1
    return float(bound) if f.type == "float" else int(bound)


def most_frequent(manifest: dict[str, Any]) -> dict[str, str]:
    """Per categorical transformer column, its most frequent training value (if the manifest says)."""
    out = {}
    features = manifest.get("baseline", {}).get("features", {})
    for name, dist in features.items() if isinstance(features, dict) else []:
        freq = dist.get("frequencies") if isinstance(dist, dict) else None
        if isinstance(freq, dict) and freq:
            out[name] = str(max(freq, key=lambda k: freq[k]))
    return out


def warmup_payload(spec: ModelSpec, manifest: dict[str, Any], i: int) -> dict[str, Any]:
    """The ``i``-th warm-up request body for this spec and version."""
    frequent = most_frequent(manifest)
    row = {f.name: typical(f, frequent) for f in spec.request.fields}
    ranking = spec.request.ranking
    if spec.request.form == "ranking" and ranking is not None:
        return {
            ranking.user_field: f"warmup-{i}",
            ranking.items_field: [f"warmup-{i}-{k}" for k in range(ITEMS)],
            ranking.context_field: row,
        }
    types = {f.name: f.type for f in spec.request.fields}
    for ent in spec.entities.values():
        row[ent.field] = 2**31 - 1 - i if types.get(ent.field) == "int" else f"warmup-{i}"
    return {"data": [row]}
