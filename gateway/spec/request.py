"""``request:``: what a client sends, and the checks applied before anything else runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gateway.spec.base import Strict


class FieldSpec(Strict):
    """One request field: its type and the checks applied before anything else runs."""

    name: str
    type: Literal["string", "float", "int", "bool"]
    required: bool = True
    default: str | float | int | bool | None = None
    min: float | None = None
    max: float | None = None
    max_length: int = 256
    enum: list[str] | None = None
    description: str = ""


class RankingSpec(Strict):
    """Ranking form: one entity (e.g. a user) scored against many items."""

    user_field: str = "uid"
    items_field: str = "item_ids"
    context_field: str = "context"
    user_entity: str = "user"
    item_entity: str = "item"
    default_top_k: int | None = None


class RequestSpec(Strict):
    form: Literal["records", "ranking"] = "records"
    max_items: int = Field(100, ge=1, le=10000)
    fields: list[FieldSpec]
    ranking: RankingSpec | None = None

    @model_validator(mode="after")
    def _ranking_needs_block(self) -> RequestSpec:
        if self.form == "ranking" and self.ranking is None:
            raise ValueError("form 'ranking' needs a 'ranking' block")
        names = [f.name for f in self.fields]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate field names in {names}")
        return self
