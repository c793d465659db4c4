"""``entities:`` and ``feature_views:``: what is read from the feature store, and the defaults."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gateway.spec.base import Strict


class EntitySpec(Strict):
    """An entity whose id comes from a request field and keys feature views."""

    field: str
    """The request field holding the entity's id (ranking: the user or items field)."""
    max_length: int = 128
    """Longest accepted id; longer is a 400 (ids are key material in Redis)."""


class HashField(Strict):
    """One field of a hash view: its type, and the value used when an entity has none."""

    dtype: Literal["float", "int", "string"] = "float"
    """How the stored value is decoded and checked at load time."""
    default: str | float | int
    """The value for an entity that is not in the store (and, with ``missing: default``, an empty cell)."""

    @model_validator(mode="after")
    def _default_has_dtype(self) -> HashField:
        # A default stands in for a stored value, so it takes the type a stored value decodes
        # to: `default: 0` on a float field is 0.0, exactly as "0" read from Redis would be.
        d = self.default
        if self.dtype == "string" and not isinstance(d, str):
            raise ValueError(f"default {d!r} of a string field must be a string")
        if self.dtype != "string" and isinstance(d, (str, bool)):
            raise ValueError(f"default {d!r} of a {self.dtype} field must be a number")
        if self.dtype == "int" and isinstance(d, float) and not d.is_integer():
            raise ValueError(f"default {d!r} of an int field must be a whole number")
        object.__setattr__(self, "default", {"float": float, "int": int, "string": str}[self.dtype](d))
        return self


class ViewCache(Strict):
    """Keep this view's decoded entities in each worker (see ``gateway.featurestore.cache``).

    Worth it for entities many requests share (a ranking's candidate items); the
    values are exact, not a stale copy: a snapshot's keys never change except by an
    incremental load, which bumps the snapshot's generation, and every request
    checks both the alias and the generation in its one round trip.
    """

    max_entities: int = Field(ge=1, le=10_000_000)
    """Entities each worker keeps decoded (least recently used ones go first)."""


class FeatureView(Strict):
    """A group of features stored per entity: hash fields, or one packed vector."""

    name: str
    """The view's name: a Redis key part ([a-z0-9_]) and what ``view:<name>`` graph inputs refer to."""
    entity: str
    """The entity whose id keys the view (a key of ``entities``)."""
    kind: Literal["hash", "vector"] = "hash"
    """hash: named fields (one Redis hash per entity); vector: one packed float32 vector."""
    fields: dict[str, HashField] = Field(default_factory=dict)
    """Field name -> type and default (hash views); names are transformer columns."""
    dim: int | None = Field(None, ge=1)
    """Length of the vector (vector views)."""
    default: Literal["zeros"] = "zeros"
    """The vector of an entity not in the store (vector views)."""
    cache: ViewCache | None = None
    """Keep entities decoded in each worker: for entities many requests share (a ranking's items)."""
    on_unavailable: Literal["defaults", "error"] = Field(
        "error",
        description=(
            "When the feature store cannot be read, or the entity has no live snapshot: score with "
            "the declared defaults (the answer is flagged degraded) or answer 503."
        ),
    )

    missing: Literal["error", "default"] = Field(
        "error",
        description=(
            "An empty cell in a loaded table (or one equal to missing_marker): an error, or the field's "
            "declared default is stored (hash views)."
        ),
    )
    missing_marker: str = Field(
        "", description="A cell text that also means missing (e.g. NA or \\N); the empty cell always does."
    )

    @model_validator(mode="after")
    def _shape(self) -> FeatureView:
        if self.kind == "hash" and not self.fields:
            raise ValueError(f"hash view '{self.name}' needs 'fields'")
        if self.kind == "vector" and self.dim is None:
            raise ValueError(f"vector view '{self.name}' needs 'dim'")
        if self.kind == "vector" and (self.missing != "error" or self.missing_marker):
            raise ValueError(f"vector view '{self.name}': missing and missing_marker apply to hash views")
        return self
