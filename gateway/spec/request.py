"""``request:``: what a client sends, and the checks applied before anything else runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gateway.spec.base import Strict


class FieldSpec(Strict):
    """One request field: its type and the checks applied before anything else runs."""

    name: str
    """The JSON key (records: in each record; ranking: in the context object)."""
    type: Literal["string", "float", "int", "bool"]
    """The JSON type accepted (an int is accepted for a float; nothing is coerced from strings)."""
    required: bool = True
    """A request without the field is a 400 naming it; optional fields take ``default``."""
    default: str | float | int | bool | None = None
    """The value of an optional field that is absent (null passes on to the transformer as missing)."""
    min: float | None = None
    """Smallest accepted number (int and float fields)."""
    max: float | None = None
    """Largest accepted number (int and float fields)."""
    max_length: int = 256
    """Longest accepted string (string fields)."""
    enum: list[str] | None = Field(None, examples=[["basic", "plus", "premium"]])
    """The only accepted values (string fields); anything else is a 400 listing them."""
    description: str = ""
    """Shown in the OpenAPI description of the request (/openapi.json, /docs)."""


class RankingSpec(Strict):
    """Ranking form: one entity (e.g. a user) scored against many items."""

    user_field: str = "uid"
    """The request key holding the one entity's id."""
    items_field: str = "item_ids"
    """The request key holding the list of candidate item ids."""
    context_field: str = "context"
    """The request key holding the context object (its keys are ``request.fields``)."""
    user_entity: str = "user"
    """The entity ``user_field`` names (a key of ``entities``)."""
    item_entity: str = "item"
    """The entity of the candidate items (a key of ``entities``)."""
    default_top_k: int | None = Field(None, examples=[10])
    """Items returned when a request names no ``top_k`` (default: all, best first)."""


class RequestSpec(Strict):
    """What a client sends to ``/get_score`` and the checks applied before anything else runs."""

    form: Literal["records", "ranking"] = "records"
    """records: ``{"data": [{...}, ...]}``, one score per record; ranking: one entity against many items."""
    max_items: int = Field(100, ge=1, le=10000)
    """Most records (records form) or candidate items (ranking form) in one request; more is a 400."""
    fields: list[FieldSpec]
    """The request fields (records: each record's keys; ranking: the context object's keys)."""
    ranking: RankingSpec | None = None
    """Where a ranking request keeps its entity, items and context (form: ranking)."""

    @model_validator(mode="after")
    def _ranking_needs_block(self) -> RequestSpec:
        if self.form == "ranking" and self.ranking is None:
            raise ValueError("form 'ranking' needs a 'ranking' block")
        names = [f.name for f in self.fields]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate field names in {names}")
        return self
