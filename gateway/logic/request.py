"""Stage 1: validate a scoring request against the model's spec.

Everything a client can get wrong is caught here, with a 400 that names the
field (``data[3].loan_amount: must be <= 1000000``), before Redis or the graph
is touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import InvalidField
from gateway.spec import FieldSpec, ModelSpec

_RECORDS_KEYS = frozenset({"data", "version", "label"})
_RANKING_KEYS = frozenset({"version", "label", "top_k"})


@dataclass
class ScoreRequest:
    """A validated request: one row per scored item, in the client's order."""

    rows: list[dict[str, Any]]
    entity_ids: dict[str, list[str]]
    version: int | None = None
    label: str | None = None
    top_k: int | None = None
    item_ids: list[str] = field(default_factory=list)
    shared_row: bool = False  # ranking: every row is the same context object

    @property
    def size(self) -> int:
        return len(self.rows)

    @property
    def routing_key(self) -> str | None:
        """The id that decides a canary split: the first entity of the first row (a ranking's user)."""
        for ids in self.entity_ids.values():
            return ids[0] if ids else None
        return None


class RequestValidator:
    """Compiled once per spec; ``validate(payload)`` runs per request."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.fields = spec.request.fields
        self.known = frozenset(f.name for f in self.fields)
        self.max_items = spec.request.max_items

    def validate(self, payload: Any) -> ScoreRequest:
        if not isinstance(payload, dict):
            raise InvalidField("body", "must be a JSON object")
        if self.spec.request.form == "ranking":
            return self._ranking(payload)
        return self._records(payload)

    # -- records form: {"data": [{...}, ...]} ---------------------------
    def _records(self, payload: dict[str, Any]) -> ScoreRequest:
        _reject_unknown("body", payload, _RECORDS_KEYS)
        data = payload.get("data")
        if data is None:
            raise InvalidField("data", "is required (a list of records)")
        if not isinstance(data, list):
            raise InvalidField("data", "must be a list of records")
        if not data:
            raise InvalidField("data", "must contain at least one record")
        if len(data) > self.max_items:
            raise InvalidField("data", f"has {len(data)} records; at most {self.max_items} allowed")
        rows = [self._row(f"data[{i}]", rec) for i, rec in enumerate(data)]
        entity_ids = {
            name: [
                _entity_id(f"data[{i}].{ent.field}", r[ent.field], ent.max_length) for i, r in enumerate(rows)
            ]
            for name, ent in self.spec.entities.items()
        }
        version, label = _version(payload)
        return ScoreRequest(rows=rows, entity_ids=entity_ids, version=version, label=label)

    # -- ranking form: {"uid": ..., "item_ids": [...], "context": {...}} --
    def _ranking(self, payload: dict[str, Any]) -> ScoreRequest:
        rk = self.spec.request.ranking
        assert rk is not None  # guaranteed by the spec validator
        _reject_unknown("body", payload, _RANKING_KEYS | {rk.user_field, rk.items_field, rk.context_field})
        uid_limit = (
            self.spec.entities[rk.user_entity].max_length if rk.user_entity in self.spec.entities else 128
        )
        uid = _entity_id(rk.user_field, payload.get(rk.user_field), uid_limit)
        items = payload.get(rk.items_field)
        if not isinstance(items, list) or not items:
            raise InvalidField(rk.items_field, "must be a non-empty list of item ids")
        if len(items) > self.max_items:
            raise InvalidField(rk.items_field, f"has {len(items)} items; at most {self.max_items} allowed")
        item_limit = (
            self.spec.entities[rk.item_entity].max_length if rk.item_entity in self.spec.entities else 128
        )
        if all(type(v) is str and 0 < len(v) <= item_limit for v in items):
            item_ids: list[str] = list(items)  # the usual case, checked without a message per item
        else:
            item_ids = [_entity_id(f"{rk.items_field}[{i}]", v, item_limit) for i, v in enumerate(items)]
        context = payload.get(rk.context_field, {})
        if not isinstance(context, dict):
            raise InvalidField(rk.context_field, "must be an object")
        ctx = self._row(rk.context_field, context)
        top_k = payload.get("top_k", rk.default_top_k)
        if top_k is not None and (not _is_int(top_k) or top_k < 1):
            raise InvalidField("top_k", "must be a positive integer")
        version, label = _version(payload)
        return ScoreRequest(
            rows=[ctx] * len(item_ids),
            entity_ids={rk.user_entity: [uid] * len(item_ids), rk.item_entity: item_ids},
            version=version,
            label=label,
            top_k=top_k,
            item_ids=item_ids,
            shared_row=True,
        )

    def _row(self, where: str, rec: Any) -> dict[str, Any]:
        if not isinstance(rec, dict):
            raise InvalidField(where, "must be an object")
        unknown = rec.keys() - self.known
        if unknown:
            raise InvalidField(f"{where}.{sorted(unknown)[0]}", "is not a field of this model")
        return {f.name: _check(f"{where}.{f.name}", f, rec.get(f.name)) for f in self.fields}


def _reject_unknown(where: str, obj: dict[str, Any], allowed: frozenset[str]) -> None:
    extra = obj.keys() - allowed
    if extra:
        raise InvalidField(sorted(extra)[0], f"unknown key in {where}; allowed: {sorted(allowed)}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check(where: str, f: FieldSpec, v: Any) -> Any:
    if v is None:
        if f.required:
            raise InvalidField(where, "is required")
        return f.default
    if f.type == "string":
        if not isinstance(v, str):
            raise InvalidField(where, f"must be a string, got {type(v).__name__}")
        if len(v) > f.max_length:
            raise InvalidField(where, f"is longer than {f.max_length} characters")
        if f.enum is not None and v not in f.enum:
            raise InvalidField(where, f"must be one of {f.enum}")
        return v
    if f.type == "bool":
        if not isinstance(v, bool):
            raise InvalidField(where, f"must be true or false, got {type(v).__name__}")
        return v
    if f.type == "int" and not _is_int(v):
        raise InvalidField(where, f"must be an integer, got {type(v).__name__}")
    if f.type == "float" and (isinstance(v, bool) or not isinstance(v, (int, float))):
        raise InvalidField(where, f"must be a number, got {type(v).__name__}")
    if isinstance(v, float) and not math.isfinite(v):
        raise InvalidField(where, "must be a finite number")
    if f.min is not None and v < f.min:
        raise InvalidField(where, f"must be >= {f.min:g}")
    if f.max is not None and v > f.max:
        raise InvalidField(where, f"must be <= {f.max:g}")
    return float(v) if f.type == "float" else v


def _entity_id(where: str, v: Any, max_length: int) -> str:
    if _is_int(v):
        v = str(v)
    if not isinstance(v, str) or not v:
        raise InvalidField(where, "must be a non-empty string id")
    if len(v) > max_length:
        raise InvalidField(where, f"is longer than {max_length} characters")
    return v


def _version(payload: dict[str, Any]) -> tuple[int | None, str | None]:
    version = payload.get("version")
    label = payload.get("label")
    if version is not None and label is not None:
        raise InvalidField("version", "give either version or label, not both")
    if version is not None:
        if isinstance(version, str) and version.isdigit():
            version = int(version)
        if not _is_int(version) or version < 1:
            raise InvalidField("version", "must be a positive integer")
    if label is not None and (not isinstance(label, str) or not label or len(label) > 64):
        raise InvalidField("label", "must be a non-empty string of at most 64 characters")
    return version, label
